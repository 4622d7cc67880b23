#pragma once
// EventHub: where the daemon sends the correlator's events. For each start and end it asks the
// store for the top contributors (on a worker thread of its own, in order), then on the control
// thread: writes the event log, logs one line, posts the webhook and feeds `events --follow`
// subscribers. Ids are assigned by the event log when an event starts.
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collector/control/control.hpp"
#include "collector/events/events.hpp"
#include "config/config.hpp"

namespace nc::daemon {

class EventHub {
 public:
  // `store_path`: the flow store (top contributors) and the parent of the event log
  // (<store_path>/events). Throws when the event log directory cannot be created.
  EventHub(boost::asio::io_context& io, const config::CorrelationConfig& cfg,
           std::string store_path, bool store_enabled);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // From the correlator, on the io_context thread.
  void onEvent(const events::Event& e, bool ended);
  // A new `events --follow` client; `req` may hold "port"/"vm" globs.
  void subscribe(const nlohmann::json& req, std::shared_ptr<control::Stream> stream);
  // `events` command: {"since","until" (RFC 3339 or UNIX ns), "port","vm","limit"}.
  nlohmann::json query(const nlohmann::json& req) const;
  // The same over an event log directory without an EventHub (detection off).
  static nlohmann::json queryDir(const std::string& dir, const nlohmann::json& req);
  // The id the log gave an ongoing event of the correlator ("" if not yet written).
  std::string idOf(const events::Event& e) const;
  nlohmann::json status() const;
  void setWebhook(const std::string& url);
  // Waits for pending explanations (bounded) and stops the worker.
  void stop();

 private:
  struct Job {
    events::Event event;
    bool ended = false;
  };
  void work();
  void finish(events::Event e, bool ended);
  static std::string keyOf(const events::Event& e);

  boost::asio::io_context& io_;
  std::string store_path_;
  bool store_enabled_;
  std::unique_ptr<events::EventLog> log_;
  std::unique_ptr<events::Webhook> webhook_;
  std::string webhook_url_;
  std::vector<std::pair<nlohmann::json, std::shared_ptr<control::Stream>>> followers_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread worker_;
  std::map<std::string, std::string> ids_;  // keyOf(event) -> log id, while ongoing
  uint64_t explained_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace nc::daemon
