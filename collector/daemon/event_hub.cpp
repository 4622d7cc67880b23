#include "collector/daemon/event_hub.hpp"

#include "common/clock.hpp"

#include <boost/asio/post.hpp>
#include <chrono>

#include "collector/correlate/explain.hpp"
#include "collector/record/fields.hpp"
#include "collector/record/names.hpp"
#include "common/log.hpp"

namespace nc::daemon {

namespace {

bool matchesFollower(const nlohmann::json& req, const events::Event& e) {
  const std::string port = req.value("port", std::string());
  const std::string vm = req.value("vm", std::string());
  if (!port.empty() &&
      (e.subject.kind != events::SubjectKind::kPort || !globMatch(port, e.subject.name))) {
    return false;
  }
  if (!vm.empty() && !globMatch(vm, e.subject.vm)) {
    return false;
  }
  return true;
}

uint64_t timeArg(const nlohmann::json& req, const char* key, uint64_t def) {
  auto it = req.find(key);
  if (it == req.end() || it->is_null()) {
    return def;
  }
  if (it->is_number_unsigned()) {
    return it->get<uint64_t>();
  }
  uint64_t t = 0;
  if (it->is_string() && parseTime(it->get<std::string>(), t)) {
    return t;
  }
  throw std::runtime_error(fmt::format("'{}': expected an RFC 3339 time or UNIX ns", key));
}

constexpr size_t kMaxJobs = 10000;

}  // namespace

EventHub::EventHub(boost::asio::io_context& io, const config::CorrelationConfig& cfg,
                   std::string store_path, bool store_enabled)
    : io_(io), store_path_(std::move(store_path)), store_enabled_(store_enabled) {
  log_ = std::make_unique<events::EventLog>(store_path_ + "/events", cfg.retention_ms * 1'000'000);
  // Events a previous run left ongoing (stopped or killed mid-event): end them now, so they do
  // not stay open forever.
  const uint64_t now = unixNowNs();
  for (events::Event e : log_->ongoing()) {
    e.end_ns = now;
    log_->update(e);
    log::info("events", "event {} was ongoing when the daemon stopped; closed at restart", e.id);
  }
  setWebhook(cfg.webhook);
  worker_ = std::thread([this] { work(); });
}

EventHub::~EventHub() {
  stop();
}

void EventHub::setWebhook(const std::string& url) {
  if (url == webhook_url_) {
    return;
  }
  webhook_.reset();
  webhook_url_ = url;
  if (!url.empty()) {
    try {
      webhook_ = std::make_unique<events::Webhook>(io_, url);
    } catch (const std::exception& e) {
      log::error("events", "webhook {}: {}", url, e.what());
    }
  }
}

void EventHub::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) {
    worker_.join();
  }
  if (webhook_) {
    webhook_->stop();
  }
  for (auto& [req, s] : followers_) {
    s->close();
  }
  followers_.clear();
}

std::string EventHub::keyOf(const events::Event& e) {
  return fmt::format("{}|{}|{}|{}", toString(e.subject.kind), e.subject.name, toString(e.direction),
                     e.start_ns);
}

void EventHub::onEvent(const events::Event& e, bool ended) {
  std::lock_guard lock(mu_);
  if (jobs_.size() >= kMaxJobs) {
    ++dropped_;
    return;
  }
  jobs_.push_back({e, ended});
  cv_.notify_one();
}

void EventHub::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return;  // stopping, nothing left
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (store_enabled_) {
      const uint64_t until = job.event.end_ns ? *job.event.end_ns : unixNowNs();
      auto ex = correlate::explainFromStore(store_path_, job.event, until);
      job.event.top = std::move(ex.top);
      job.event.exporters = std::move(ex.exporters);
      if (!ex.error.empty()) {
        log::debug("events", "top contributors: {}", ex.error);
      }
    }
    {
      std::lock_guard lock(mu_);
      ++explained_;
    }
    boost::asio::post(io_, [this, e = std::move(job.event), ended = job.ended]() mutable {
      finish(std::move(e), ended);
    });
  }
}

void EventHub::finish(events::Event e, bool ended) {
  const std::string key = keyOf(e);
  {
    std::lock_guard lock(mu_);
    auto it = ids_.find(key);
    if (it != ids_.end()) {
      e.id = it->second;
    }
  }
  if (e.id.empty()) {
    log_->append(e);  // assigns the id
    if (!ended) {
      std::lock_guard lock(mu_);
      ids_[key] = e.id;
    }
  } else {
    log_->update(e);
  }
  if (ended) {
    std::lock_guard lock(mu_);
    ids_.erase(key);
  }
  log::info("events", "{}", events::formatLine(e, ended));
  if (webhook_) {
    webhook_->post(e);
  }
  nlohmann::json j = events::toJson(e);
  j["state"] = ended ? "ended" : "started";
  for (auto it = followers_.begin(); it != followers_.end();) {
    if (it->second->closed()) {
      it = followers_.erase(it);
      continue;
    }
    if (matchesFollower(it->first, e)) {
      it->second->send(j);
    }
    ++it;
  }
}

void EventHub::subscribe(const nlohmann::json& req, std::shared_ptr<control::Stream> stream) {
  followers_.emplace_back(req, std::move(stream));
}

namespace {
events::Query toQuery(const nlohmann::json& req) {
  events::Query q;
  q.since_ns = timeArg(req, "since", 0);
  q.until_ns = timeArg(req, "until", UINT64_MAX);
  q.port = req.value("port", std::string());
  q.vm = req.value("vm", std::string());
  q.limit = req.value("limit", size_t{0});
  return q;
}
}  // namespace

nlohmann::json EventHub::queryDir(const std::string& dir, const nlohmann::json& req) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : events::queryDir(dir, toQuery(req))) {
    out.push_back(events::toJson(e));
  }
  return out;
}

nlohmann::json EventHub::query(const nlohmann::json& req) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : log_->query(toQuery(req))) {
    out.push_back(events::toJson(e));
  }
  return out;
}

std::string EventHub::idOf(const events::Event& e) const {
  std::lock_guard lock(mu_);
  auto it = ids_.find(keyOf(e));
  return it == ids_.end() ? std::string() : it->second;
}

nlohmann::json EventHub::status() const {
  nlohmann::json j = {{"log", log_->status()}};
  {
    std::lock_guard lock(mu_);
    j["explained"] = explained_;
    j["queued"] = jobs_.size();
    j["dropped"] = dropped_;
  }
  j["followers"] = followers_.size();
  j["webhook"] = webhook_ ? webhook_->status() : nlohmann::json();
  return j;
}

}  // namespace nc::daemon
