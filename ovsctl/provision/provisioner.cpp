// Provisioner (the reconcile loop) and the one-shot helpers of ovsctl.hpp.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <set>
#include <stdexcept>

#include "collector/metrics/json.hpp"
#include "common/log.hpp"
#include "ovsctl/ovsctl.hpp"
#include "ovsctl/ovsdb/ovsdb.hpp"
#include "ovsctl/provision/plan.hpp"

namespace nc::ovsctl {

namespace asio = boost::asio;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr auto kDebounce = 100ms;
constexpr auto kStatusTick = 250ms;
constexpr auto kMinTxnRetry = 1000ms;
constexpr auto kMaxTxnRetry = 30000ms;
constexpr int kMaxConflictsInARow = 20;

std::string isoTime(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

jsonrpc::Endpoint endpointOrThrow(const config::OvsdbConfig& cfg) {
  std::string why;
  auto ep = jsonrpc::parseEndpoint(cfg.endpoint, &why);
  if (!ep) {
    throw std::runtime_error("ovsdb.endpoint: " + why);
  }
  return *ep;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Provisioner

class Provisioner::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, config::OvsdbConfig cfg, std::vector<config::BridgeRule> rules,
       Target target, std::string owner)
      : io_(io),
        cfg_(std::move(cfg)),
        rules_(std::move(rules)),
        target_(std::move(target)),
        owner_(std::move(owner)),
        debounce_(io),
        retry_(io),
        tick_(io) {
    publish();
  }

  void start() {
    if (started_) {
      return;
    }
    started_ = true;
    stopped_ = false;
    std::string why;
    auto ep = jsonrpc::parseEndpoint(cfg_.endpoint, &why);
    if (!ep) {
      config_error_ = "ovsdb.endpoint: " + why;
      log::error("ovsctl", "{}", config_error_);
      publish();
      return;
    }
    client_ = ovsdb::Client::create(io_, *ep, provision::monitorSpec());
    std::weak_ptr<Impl> weak = shared_from_this();
    client_->on_synced = [weak] {
      if (auto self = weak.lock()) {
        // Full resync: whatever was in flight belonged to the old connection.
        self->txn_in_flight_ = false;
        self->schedule(0ms);
      }
    };
    client_->on_change = [weak] {
      if (auto self = weak.lock()) {
        self->schedule(kDebounce);
      }
    };
    client_->on_down = [weak](const std::string&) {
      if (auto self = weak.lock()) {
        self->txn_in_flight_ = false;
        self->publish();
      }
    };
    client_->start();
    tick();
    publish();
  }

  void stop() {
    stopped_ = true;
    started_ = false;
    debounce_.cancel();
    retry_.cancel();
    tick_.cancel();
    if (client_) {
      client_->stop();
      client_.reset();
    }
    publish();
  }

  void reconfigure(std::vector<config::BridgeRule> rules, std::optional<Target> target) {
    rules_ = std::move(rules);
    if (target) {
      target_ = std::move(*target);
    }
    log::info("ovsctl", "bridge rules reconfigured ({} rule(s))", rules_.size());
    schedule(0ms);
  }

  // Reconciles after `delay` unless one is already scheduled.
  void schedule(std::chrono::milliseconds delay) {
    if (stopped_ || debounce_armed_) {
      return;
    }
    debounce_armed_ = true;
    auto self = shared_from_this();
    debounce_.expires_after(delay);
    debounce_.async_wait([self](const boost::system::error_code& ec) {
      self->debounce_armed_ = false;
      if (!ec) {
        self->reconcile();
      }
    });
  }

  void reconcile() {
    if (stopped_ || !client_ || !client_->synced()) {
      return;
    }
    if (txn_in_flight_ || retry_armed_) {
      dirty_ = true;
      return;
    }
    dirty_ = false;
    provision::PlanInput in;
    in.rules = &rules_;
    in.target = target_;
    in.owner_id = owner_;
    in.endpoint = cfg_.endpoint;
    in.refresh_ipfix = [this](const std::string& bridge, uint32_t domain) {
      if (!templates_known_ || ipfix_checked_.count(bridge) != 0) {
        return false;
      }
      if (templates_known_(bridge, domain)) {
        ipfix_checked_.insert(bridge);
        return false;
      }
      return true;
    };
    Plan plan = provision::computePlan(client_->replica(), in);
    ++reconciles_;
    last_reconcile_ = std::chrono::system_clock::now();
    if (!plan.ok()) {
      if (plan.errors != last_plan_.errors) {
        for (const auto& e : plan.errors) {
          log::error("ovsctl", "not provisioning: {}", e);
        }
      }
      last_plan_ = std::move(plan);
      publish();
      return;
    }
    last_plan_ = std::move(plan);
    if (last_plan_.transaction.empty()) {
      publish();
      return;
    }
    for (const auto& b : last_plan_.bridges) {
      for (const auto& p : b.protocols) {
        if (p.action != Action::Ok && p.action != Action::Foreign &&
            p.action != Action::Unmanaged) {
          std::string detail;
          for (const auto& c : p.changes) {
            detail += (detail.empty() ? "" : ", ") + c;
          }
          log::info("ovsctl", "{} {}: {} {}{}", b.name, toString(p.protocol), toString(p.action),
                    detail, p.note.empty() ? "" : " (" + p.note + ")");
        }
      }
    }
    // Bridges whose IPFIX row this transaction creates: OVS sends templates at the first export.
    std::vector<std::string> ipfix_fresh;
    for (const auto& b : last_plan_.bridges) {
      for (const auto& p : b.protocols) {
        if (p.protocol == Protocol::Ipfix &&
            (p.action == Action::Create || p.action == Action::Refresh)) {
          ipfix_fresh.push_back(b.name);
        }
      }
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    const size_t changes = last_plan_.changeCount();
    txn_in_flight_ =
        client_->transact(last_plan_.transaction, [weak, changes, ipfix_fresh](ovsdb::TxnResult r) {
          if (auto self = weak.lock()) {
            self->onTxn(r, changes, ipfix_fresh);
          }
        });
    if (txn_in_flight_) {
      ++transactions_;
    }
    publish();
  }

  void onTxn(const ovsdb::TxnResult& r, size_t changes, const std::vector<std::string>& fresh) {
    txn_in_flight_ = false;
    if (stopped_) {
      return;
    }
    switch (r.status) {
      case ovsdb::TxnResult::Status::Ok:
        conflicts_in_a_row_ = 0;
        failures_in_a_row_ = 0;
        last_txn_error_.clear();
        ipfix_checked_.insert(fresh.begin(), fresh.end());
        log::info("ovsctl", "applied {} change(s)", changes);
        if (dirty_) {
          schedule(kDebounce);
        }
        break;
      case ovsdb::TxnResult::Status::Conflict:
        ++conflicts_;
        log::info("ovsctl", "transaction conflict ({}); re-planning", r.error);
        // The updates that caused it arrived before the reply: the replica is fresh already.
        if (++conflicts_in_a_row_ < kMaxConflictsInARow) {
          schedule(kDebounce);
        } else {
          retryLater("too many conflicts in a row: " + r.error);
        }
        break;
      case ovsdb::TxnResult::Status::Lost:
        break;  // the resync after reconnect reconciles
      case ovsdb::TxnResult::Status::Error:
        ++txn_errors_;
        log::error("ovsctl", "transaction failed: {}", r.error);
        retryLater(r.error);
        break;
    }
    publish();
  }

  void retryLater(const std::string& why) {
    last_txn_error_ = why;
    auto wait = kMinTxnRetry * (1 << std::min(failures_in_a_row_++, 5));
    wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(wait), kMaxTxnRetry);
    retry_armed_ = true;
    auto self = shared_from_this();
    retry_.expires_after(wait);
    retry_.async_wait([self](const boost::system::error_code& ec) {
      self->retry_armed_ = false;
      if (!ec) {
        self->reconcile();
      }
    });
  }

  void tick() {
    auto self = shared_from_this();
    tick_.expires_after(kStatusTick);
    tick_.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->stopped_) {
        return;
      }
      self->publish();
      self->tick();
    });
  }

  void publish() {
    Json s;
    ProvisionStats st;
    s["owner"] = owner_;
    s["endpoint"] = cfg_.endpoint;
    s["enabled"] = cfg_.enabled;
    if (client_) {
      const auto& sess = client_->session();
      s["state"] = jsonrpc::toString(sess.state());
      s["synced"] = client_->synced();
      s["last_error"] = sess.lastError();
      s["monitor"] = client_->monitorMethod();
      const auto& k = sess.counters();
      st.connects = k.connects;
      st.disconnects = k.disconnects;
      st.connect_failures = k.connect_failures;
      st.echo_answered = k.echo_answered;
      st.probes_sent = k.probes_sent;
      if (sess.state() == jsonrpc::State::Backoff) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            sess.retryAt() - std::chrono::steady_clock::now());
        s["retry_in_ms"] = std::max<int64_t>(0, left.count());
      } else {
        s["retry_in_ms"] = nullptr;
      }
    } else {
      s["state"] = "stopped";
      s["synced"] = false;
      s["last_error"] = config_error_;
      s["monitor"] = "";
      s["retry_in_ms"] = nullptr;
    }
    s["last_reconcile"] = reconciles_ ? Json(isoTime(last_reconcile_)) : Json();
    st.reconciles = reconciles_;
    st.transactions = transactions_;
    st.conflicts = conflicts_;
    st.txn_errors = txn_errors_;
    s.update(metrics::toJson(st));  // every NC_PROVISION_STATS counter
    s["last_txn_error"] = last_txn_error_;
    s["pending_changes"] = last_plan_.changeCount();
    s["errors"] = last_plan_.errors;
    s["warnings"] = last_plan_.warnings;
    s["bridges"] = toJson(last_plan_)["bridges"];
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(s);
    stats_ = st;
  }

  Json status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  ProvisionStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  asio::io_context& io_;
  config::OvsdbConfig cfg_;
  std::vector<config::BridgeRule> rules_;
  Target target_;
  std::string owner_;
  IpfixTemplatesKnownFn templates_known_;
  std::set<std::string> ipfix_checked_;  // bridges whose IPFIX templates need no refresh

  std::shared_ptr<ovsdb::Client> client_;
  asio::steady_timer debounce_;
  asio::steady_timer retry_;
  asio::steady_timer tick_;
  bool started_ = false;
  bool stopped_ = false;
  bool debounce_armed_ = false;
  bool retry_armed_ = false;
  bool txn_in_flight_ = false;
  bool dirty_ = false;
  int conflicts_in_a_row_ = 0;
  int failures_in_a_row_ = 0;
  std::string config_error_;

  uint64_t reconciles_ = 0;
  uint64_t transactions_ = 0;
  uint64_t conflicts_ = 0;
  uint64_t txn_errors_ = 0;
  std::string last_txn_error_;
  std::chrono::system_clock::time_point last_reconcile_{};
  Plan last_plan_;

  mutable std::mutex mu_;
  Json status_;
  ProvisionStats stats_;
};

namespace {
// Runs fn on the io_context's thread: now if we are on it, else posted.
template <typename F>
void onIoThread(asio::io_context& io, F&& fn) {
  if (io.get_executor().running_in_this_thread()) {
    fn();
  } else {
    asio::post(io, std::forward<F>(fn));
  }
}
}  // namespace

Provisioner::Provisioner(asio::io_context& io, const config::OvsdbConfig& ovsdb,
                         std::vector<config::BridgeRule> rules, Target target, std::string owner_id)
    : impl_(std::make_shared<Impl>(io, ovsdb, std::move(rules), std::move(target),
                                   std::move(owner_id))) {}

Provisioner::~Provisioner() {
  auto impl = impl_;
  onIoThread(impl->io_, [impl] { impl->stop(); });
}

void Provisioner::setIpfixTemplatesKnown(IpfixTemplatesKnownFn fn) {
  auto impl = impl_;
  onIoThread(impl->io_,
             [impl, fn = std::move(fn)]() mutable { impl->templates_known_ = std::move(fn); });
}

void Provisioner::start() {
  auto impl = impl_;
  onIoThread(impl->io_, [impl] { impl->start(); });
}

void Provisioner::stop() {
  auto impl = impl_;
  onIoThread(impl->io_, [impl] { impl->stop(); });
}

void Provisioner::reconfigure(std::vector<config::BridgeRule> rules) {
  auto impl = impl_;
  onIoThread(impl->io_, [impl, rules = std::move(rules)]() mutable {
    impl->reconfigure(std::move(rules), std::nullopt);
  });
}

void Provisioner::reconfigure(std::vector<config::BridgeRule> rules, Target target) {
  auto impl = impl_;
  onIoThread(impl->io_, [impl, rules = std::move(rules), target = std::move(target)]() mutable {
    impl->reconfigure(std::move(rules), std::move(target));
  });
}

Json Provisioner::status() const {
  return impl_->status();
}

ProvisionStats Provisioner::stats() const {
  return impl_->stats();
}

// ---------------------------------------------------------------------------------------------
// One-shot helpers

namespace {

// Connects, waits for the replica, then calls step(client, done) on the io thread; step may start
// transactions and must eventually call done(). Throws when OVSDB does not answer in time.
void runOneShot(const config::OvsdbConfig& cfg, const OneShotOptions& options,
                const std::function<void(ovsdb::Client&, std::function<void()> done)>& step) {
  asio::io_context io;
  jsonrpc::SessionOptions so;
  so.reconnect = false;
  so.quiet = true;  // the caller reports errors (the exception says why)
  so.connect_timeout = options.timeout;
  auto client = ovsdb::Client::create(io, endpointOrThrow(cfg), provision::monitorSpec(), so);
  bool finished = false;
  std::string down;
  std::exception_ptr error;
  auto done = [&] {
    finished = true;
    io.stop();
  };
  client->on_synced = [&] {
    try {
      step(*client, done);
    } catch (...) {
      error = std::current_exception();
      done();
    }
  };
  client->on_down = [&](const std::string& why) {
    down = why;
    if (!finished) {
      io.stop();
    }
  };
  client->start();
  io.run_for(options.timeout);
  client->stop();
  if (error) {
    std::rethrow_exception(error);
  }
  if (!finished) {
    throw std::runtime_error(fmt::format(
        "OVSDB at {} unreachable: {}", cfg.endpoint,
        down.empty() ? fmt::format("no answer within {} ms", options.timeout.count()) : down));
  }
}

ApplyResult applyRules(const config::OvsdbConfig& cfg, const std::vector<config::BridgeRule>& rules,
                       const Target& target, const std::string& owner_id,
                       const OneShotOptions& options) {
  ApplyResult result;
  provision::PlanInput in;
  in.rules = &rules;
  in.target = target;
  in.owner_id = owner_id;
  in.endpoint = cfg.endpoint;
  // Re-plans from the (fresh) replica until the transaction commits or attempts run out.
  std::function<void()> attempt;
  runOneShot(cfg, options, [&](ovsdb::Client& client, std::function<void()> done) {
    attempt = [&client, &result, &in, &options, &attempt, done] {
      result.plan = provision::computePlan(client.replica(), in);
      if (!result.plan.ok()) {
        result.error = fmt::format("{} plan error(s); nothing written: {}",
                                   result.plan.errors.size(), result.plan.errors.front());
        done();
        return;
      }
      if (result.plan.transaction.empty()) {
        result.ok = true;
        done();
        return;
      }
      if (result.attempts >= options.max_attempts) {
        result.error = fmt::format("gave up after {} conflicting attempts", result.attempts);
        done();
        return;
      }
      ++result.attempts;
      const size_t changes = result.plan.changeCount();
      client.transact(result.plan.transaction,
                      [&result, &attempt, done, changes](ovsdb::TxnResult r) {
                        switch (r.status) {
                          case ovsdb::TxnResult::Status::Ok:
                            result.ok = true;
                            result.changes = changes;
                            done();
                            return;
                          case ovsdb::TxnResult::Status::Conflict:
                            ++result.conflicts;
                            attempt();
                            return;
                          default:
                            result.error = r.error;
                            done();
                            return;
                        }
                      });
    };
    attempt();
  });
  return result;
}

}  // namespace

Plan plan(const config::Config& config, const Target& target, const std::string& owner_id,
          const OneShotOptions& options) {
  Plan out;
  provision::PlanInput in;
  const std::vector<config::BridgeRule> rules = config::effectiveBridgeRules(config);
  in.rules = &rules;
  in.target = target;
  in.owner_id = owner_id;
  in.endpoint = config.ovsdb.endpoint;
  runOneShot(config.ovsdb, options, [&](ovsdb::Client& client, std::function<void()> done) {
    out = provision::computePlan(client.replica(), in);
    done();
  });
  return out;
}

ApplyResult apply(const config::Config& config, const Target& target, const std::string& owner_id,
                  const OneShotOptions& options) {
  return applyRules(config.ovsdb, config::effectiveBridgeRules(config), target, owner_id, options);
}

ApplyResult removeOwned(const config::OvsdbConfig& ovsdb, const std::string& owner_id,
                        const OneShotOptions& options) {
  return applyRules(ovsdb, {}, Target{}, owner_id, options);
}

}  // namespace nc::ovsctl
