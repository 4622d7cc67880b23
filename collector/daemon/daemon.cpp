#include "collector/daemon/daemon.hpp"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>
#include <unordered_map>

#include "collector/control/control.hpp"
#include "collector/correlate/correlator.hpp"
#include "collector/daemon/event_hub.hpp"
#include "collector/daemon/interfaces.hpp"
#include "collector/daemon/recent.hpp"
#include "collector/dashboard/dashboard.hpp"
#include "collector/http/http.hpp"
#include "collector/ingest/ingest.hpp"
#include "collector/metrics/json.hpp"
#include "collector/metrics/metrics.hpp"
#include "collector/profile/profile_store.hpp"
#include "collector/profile/profiler.hpp"
#include "collector/record/fields.hpp"
#include "collector/sink/sink.hpp"
#include "collector/store/store.hpp"
#include "common/clock.hpp"
#include "common/log.hpp"
#include "common/periodic_timer.hpp"
#include "common/units.hpp"
#include "common/version.hpp"
#include "ovsctl/inventory/inventory.hpp"
#include "ovsctl/ovsctl.hpp"

namespace nc::daemon {
namespace {

// 4096 x ~180 B per shard stays in the receive core's L2 cache (every record is copied in).
constexpr size_t kRecentPerShard = 4096;

// The daemon's sinks of a shard (collector/sink): the recent-flows ring, exporters' interface
// tables and the flow store (`store` may be null when it could not be opened).
class RecentSink : public sink::FlowSink {
 public:
  explicit RecentSink(RecentRing& ring) : ring_(ring) {}
  void onBatch(const sink::Batch& b) override { ring_.add(b.records); }

 private:
  RecentRing& ring_;
};

class InterfacesSink : public sink::FlowSink {
 public:
  explicit InterfacesSink(InterfaceTable& table) : table_(table) {}
  void onBatch(const sink::Batch&) override {}
  void onCounters(const decode::InterfaceCounters& c) override { table_.onCounters(c); }
  void onInterfaceName(const decode::InterfaceName& n) override { table_.onName(n); }

 private:
  InterfaceTable& table_;
};

class StoreSink : public sink::FlowSink {
 public:
  explicit StoreSink(store::Writer& w) : w_(w) {}
  // Never blocks on disk: drops (counted) when the writer's queue is full.
  void onBatch(const sink::Batch& b) override { w_.append(b.records); }

 private:
  store::Writer& w_;
};

correlate::CorrelatorOptions toCorrelatorOptions(const config::CorrelationConfig& c) {
  correlate::CorrelatorOptions o;
  o.step_ns = c.step_ms * 1'000'000;
  o.warmup_ns = c.warmup_ms * 1'000'000;
  o.sensitivity = c.sensitivity;
  o.min_bps = static_cast<double>(c.min_bps);
  o.min_pps = static_cast<double>(c.min_pps);
  o.cooldown_ns = c.cooldown_ms * 1'000'000;
  // A record covers at most about the active timeout (exporters such as Open vSwitch's NetFlow
  // report delta counters with the flow's first packet ever as its start): spread it over no
  // more than that.
  o.max_span_ns = uint64_t{c.active_timeout} * 1'000'000'000ull;
  // Flows may take up to the active timeout (plus export delays) to arrive.
  o.max_delay_ns =
      std::max<uint64_t>(60'000'000'000ull, uint64_t{c.active_timeout} * 2'000'000'000ull);
  // Shards hand their sums over a tenth of a step at a time (250 ms to 1 s): the merge costs the
  // control thread a hash lookup per subject and period, and the delay adds to the settle time.
  o.handover_ns = std::clamp<uint64_t>(o.step_ns / 10, 250'000'000, 1'000'000'000);
  return o;
}

nlohmann::json interfaceJson(const InterfaceEntry& e) {
  nlohmann::json j = {{"exporter", e.exporter.toString()},
                      {"if_index", e.if_index},
                      {"if_kind", std::string(toString(e.if_kind))},
                      {"name", e.name},
                      {"name_source", e.name_source},
                      {"name_learnt", e.name_ns != 0 ? formatTime(e.name_ns) : ""},
                      {"counter_samples", e.samples}};
  if (e.has_counters) {
    const auto& c = e.counters;
    nlohmann::json k = {{"received", formatTime(c.received_ns)},
                        {"sequence", c.sequence},
                        {"source_id", c.source_id}};
    if (c.has_generic) {
      k.update({{"if_type", c.if_type},
                {"speed_bps", c.if_speed},
                {"direction", c.if_direction},
                {"admin_up", (c.if_status & 1) != 0},
                {"oper_up", (c.if_status & 2) != 0},
                {"in_octets", c.in_octets},
                {"in_packets", c.in_packets},
                {"in_errors", c.in_errors},
                {"in_discards", c.in_discards},
                {"out_octets", c.out_octets},
                {"out_packets", c.out_packets},
                {"out_errors", c.out_errors},
                {"out_discards", c.out_discards},
                {"in_bps", e.in_bps},
                {"out_bps", e.out_bps},
                {"in_pps", e.in_pps},
                {"out_pps", e.out_pps}});
    }
    if (c.has_openflow) {
      k.update({{"of_dpid", fmt::format("{:016x}", c.of_dpid)}, {"of_port", c.of_port}});
    }
    j["counters"] = std::move(k);
  }
  return j;
}

store::StoreOptions toStoreOptions(const config::StoreConfig& c) {
  store::StoreOptions o;
  o.path = c.path;
  o.rotate_ms = c.rotate_ms;
  o.max_age_ms = c.retention.max_age_ms;
  o.max_size = c.retention.max_size;
  store::parseCompression(c.compression, o.compression);  // validated by config
  o.queue_bytes = c.queue_size;
  return o;
}

nlohmann::json storeJson(const std::string& path, const store::Writer* w,
                         const std::string& open_error) {
  if (w == nullptr) {
    return {{"path", path}, {"enabled", false}, {"last_error", open_error}};
  }
  const auto s = w->stats();
  nlohmann::json j = metrics::toJson(s);  // every NC_STORE_STATS counter
  j.update({{"path", path},
            {"enabled", true},
            {"queue_limit_bytes", w->options().queue_bytes},
            {"error_now", s.error_now},
            {"last_error", s.last_error},
            {"oldest", s.oldest_ns != 0 ? formatTime(s.oldest_ns) : ""},
            {"newest", s.newest_ns != 0 ? formatTime(s.newest_ns) : ""}});
  return j;
}

decode::ExporterConfig toDecoderConfig(const config::ExporterOverride& o) {
  decode::ExporterConfig c;
  c.sampling_rate = o.sampling_rate;
  if (o.kind == "ovs") {
    c.flavor = decode::ExporterFlavor::kOvs;
  } else if (o.kind == "router") {
    c.flavor = decode::ExporterFlavor::kRouter;
  }
  if (o.interfaces == "snmp") {
    c.if_kind = IfKind::kSnmp;
  } else if (o.interfaces == "ifindex") {
    c.if_kind = IfKind::kLinuxIfindex;
  } else if (o.interfaces == "ofport") {
    c.if_kind = IfKind::kOpenFlowPort;
  }
  return c;
}

// The counters come from ExporterStats' one list (NC_EXPORTER_STATS), the identity by hand.
nlohmann::json exporterJson(const decode::ExporterStats& e) {
  nlohmann::json j = metrics::toJson(e);
  j.update({{"exporter", e.exporter.toString()},
            {"protocol", std::string(toString(e.last_proto))},
            {"flavor", std::string(decode::toString(e.flavor))},
            {"first_seen", formatTime(e.first_seen_ns)},
            {"last_seen", formatTime(e.last_seen_ns)}});
  return j;
}

class Daemon {
 public:
  explicit Daemon(Options opts)
      : opts_(std::move(opts)),
        started_(std::chrono::system_clock::now()),
        signals_(io_, SIGINT, SIGTERM, SIGHUP),
        rate_timer_(io_) {}

  int run() {
    applyLogLevel();
    control_ = std::make_unique<control::ControlServer>(io_, opts_.config.control.socket);
    startStore();
    startProfiles();
    startInventory();
    startCorrelation();
    startIngest();
    registerCommands();
    registerMetrics();
    startHttp();
    control_->start();
    scheduleRates();
    waitSignal();
    log::info("daemon", "net-collectord {} started (pid {}, config {}, control {})", kVersion,
              ::getpid(), opts_.config_path.empty() ? "(defaults)" : opts_.config_path,
              control_->path());
    sd_notify(0, "READY=1\nSTATUS=running");
    io_.run();
    sd_notify(0, "STOPPING=1");
    control_->stop();
    if (http_) {
      http_->stop();
    }
    dashboard_.reset();    // waits for a running drill-down query
    provisioner_.reset();  // OVS exports stay in place: a restart must not disrupt them
    ingest_->stop();
    if (profiler_) {
      profiler_->stop();  // writes every open step
    }
    if (correlator_) {
      correlator_->stop();
    }
    if (events_) {
      events_->stop();
    }
    if (inventory_) {
      inventory_->stop();
    }
    if (store_) {
      store_->close();  // flushes and seals the open segment
      auto s = store_->stats();
      log::info("store", "{} rows stored, {} dropped, {} write errors", s.rows_written,
                s.rows_dropped, s.write_errors);
    }
    auto t = ingest_->totals();
    log::info("daemon", "received {} datagrams, {} records ({} decode errors, {} kernel drops)",
              t.datagrams, t.records, t.decode_errors, t.kernel_drops);
    log::info("daemon", "stopped");
    return 0;
  }

 private:
  // Opens the flow store (recovering a segment left open by a crash). The daemon keeps running
  // without it when the directory is unusable: flows are still decoded and shown live.
  void startStore() {
    try {
      store_ = std::make_unique<store::Writer>(toStoreOptions(opts_.config.store));
      log::info("store", "writing flows to {} ({}, rotate every {} ms)", opts_.config.store.path,
                opts_.config.store.compression, opts_.config.store.rotate_ms);
    } catch (const std::exception& e) {
      store_error_ = e.what();
      log::error("store", "flows will not be stored: {}", e.what());
    }
  }

  // nfsen-style profiles (collector/profile): channels counted live by a sink in every shard,
  // kept in RRD files, back-filled from the store. Runs without any profile declared so that the
  // CLI can add some; the daemon keeps running without it when its directory is unusable.
  void startProfiles() {
    const config::ProfilesConfig& c = opts_.config.profiles;
    profile::ProfilerOptions o;
    o.dir = c.path;
    o.store_path = store_ ? opts_.config.store.path : std::string();
    o.step_ns = c.step_ms * 1'000'000;
    o.delay_ns = c.delay_ms * 1'000'000;
    o.max_span_ns = c.max_span_ms * 1'000'000;
    try {
      std::filesystem::create_directories(c.path);
      profiler_ = std::make_unique<profile::Profiler>(io_, o);
      for (const auto& m : profiler_->open(c.declared, unixNowNs())) {
        log::warn("profile", "{}", m);
      }
      profiler_->start();
      const nlohmann::json st = profiler_->status();
      log::info("profile", "{} profile(s), {} channel(s) in {} (step {})",
                st.value("profiles", size_t{0}), st.value("channels", size_t{0}), c.path,
                units::formatDurationMs(c.step_ms));
    } catch (const std::exception& e) {
      profiles_error_ = e.what();
      profiler_.reset();
      log::error("profile", "profiles are off: {}", e.what());
    }
  }

  // The host inventory (OVSDB ports + Linux netlink): flows are joined to it in the shards.
  void startInventory() {
    inventory::InventoryOptions o;
    o.ovsdb = opts_.config.ovsdb.enabled;
    inventory_ = std::make_unique<inventory::Inventory>(io_, opts_.config.ovsdb, o);
    inventory_->start();
  }

  // Spike detection (correlation.enabled): the correlator's shards are sinks; its events go to
  // the EventHub (event log, log lines, webhook, followers).
  void startCorrelation() {
    const auto& c = opts_.config.correlation;
    if (!c.enabled) {
      return;
    }
    try {
      events_ = std::make_unique<EventHub>(io_, c, opts_.config.store.path, store_ != nullptr);
    } catch (const std::exception& e) {
      log::error("events", "event log under {}/events: {}; events are only logged",
                 opts_.config.store.path, e.what());
    }
    correlator_ =
        std::make_unique<correlate::Correlator>(io_, toCorrelatorOptions(c), inventory_.get());
    correlator_->on_event = [this](const events::Event& e, bool ended) {
      if (events_) {
        events_->onEvent(e, ended);
      } else {
        log::info("events", "{}", events::formatLine(e, ended));
      }
    };
    correlator_->start();
    log::info("correlate", "spike detection on: step {}, warm-up {}, sensitivity {}",
              units::formatDurationMs(c.step_ms), units::formatDurationMs(c.warmup_ms),
              c.sensitivity);
  }

  void startIngest() {
    const auto& c = opts_.config.collector;
    ingest::IngestOptions io;
    for (const auto& l : c.listen) {
      io.listen.push_back({l.address, l.port});
    }
    io.threads = c.threads != 0 ? c.threads : std::max(1u, std::thread::hardware_concurrency());
    io.rcvbuf = c.rcvbuf;
    for (const auto& a : c.allow) {
      ingest::Network n;
      if (ingest::Network::parse(a, n)) {
        io.allow.push_back(n);
      }
    }
    for (const auto& e : c.exporters) {
      ingest::ExporterRule rule;
      if (ingest::Network::parse(e.network, rule.network)) {
        rule.config = toDecoderConfig(e);
        io.exporters.push_back(rule);
      }
    }
    if (opts_.config.ovsdb.enabled && !opts_.config.bridges.empty()) {
      // Exporters this daemon provisions are the local Open vSwitch, sending from loopback (after
      // any rule the operator wrote, which wins).
      for (const char* net : {"127.0.0.1/32", "::1/128"}) {
        ingest::ExporterRule rule;
        ingest::Network::parse(net, rule.network);
        rule.config.flavor = decode::ExporterFlavor::kOvs;
        io.exporters.push_back(rule);
      }
    }
    io.templates_path =
        c.templates.empty() ? opts_.config.store.path + "/templates.bin" : c.templates;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(io.templates_path).parent_path(), ec);
    if (ec) {
      log::warn("daemon", "templates will not persist: cannot create {}: {}",
                std::filesystem::path(io.templates_path).parent_path().string(), ec.message());
      io.templates_path.clear();
    }
    for (uint32_t i = 0; i < io.threads; ++i) {
      recent_.push_back(std::make_unique<RecentRing>(kRecentPerShard));
      interfaces_.push_back(std::make_unique<InterfaceTable>());
    }
    ingest_ = std::make_unique<ingest::Ingest>(io, [this](uint32_t shard) {
      auto p = std::make_unique<sink::ShardPipeline>(
          std::make_unique<inventory::Enricher>(inventory_.get()));
      p->adopt(std::make_unique<RecentSink>(*recent_[shard]));
      p->adopt(std::make_unique<InterfacesSink>(*interfaces_[shard]));
      if (store_) {
        p->adopt(std::make_unique<StoreSink>(*store_));
      }
      if (correlator_) {
        p->adopt(correlator_->makeShard());
      }
      if (profiler_) {
        p->adopt(profiler_->makeShard());
      }
      return p;
    });
    ingest_->start();
    startProvisioner();
    auto ports = ingest_->boundPorts();
    for (size_t i = 0; i < ports.size(); ++i) {
      log::info("collector", "listening on {}:{} (udp, {} shard(s))", c.listen[i].address, ports[i],
                io.threads);
    }
  }

  // OVSDB provisioning: make the declared bridges export to this daemon, and keep it so.
  void startProvisioner() {
    const auto& c = opts_.config;
    if (!c.ovsdb.enabled) {
      return;
    }
    config::CollectorConfig bound = c.collector;  // exporters target the ports actually bound
    auto ports = ingest_->boundPorts();
    for (size_t i = 0; i < ports.size() && i < bound.listen.size(); ++i) {
      bound.listen[i].port = ports[i];
    }
    provisioner_ = std::make_unique<ovsctl::Provisioner>(
        io_, c.ovsdb, config::effectiveBridgeRules(c), ovsctl::targetFromListeners(bound),
        ovsctl::defaultOwnerId());
    // OVS re-sends IPFIX templates only every 600 s: when we start without any, the provisioner
    // re-creates our IPFIX rows once so that OVS sends them now.
    provisioner_->setIpfixTemplatesKnown([this](const std::string&, uint32_t) {
      if (ingest_->loadedTemplates() > 0) {
        return true;
      }
      for (const auto& e : ingest_->exporters()) {
        if (e.templates_known > 0) {
          return true;
        }
      }
      return false;
    });
    provisioner_->start();
    log::info("ovsdb", "provisioning {} bridge rule(s) via {} as {}", c.bridges.size(),
              c.ovsdb.endpoint, ovsctl::defaultOwnerId());
  }

  // Every 2 s: ingest rates for `status`, the store's bytes per flow for the profiles.
  void scheduleRates() {
    rate_timer_.start(std::chrono::seconds(2), [this] {
      auto t = ingest_->totals();
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - rate_at_).count();
      if (dt > 0) {
        rate_datagrams_ = static_cast<double>(t.datagrams - rate_prev_.datagrams) / dt;
        rate_records_ = static_cast<double>(t.records - rate_prev_.records) / dt;
      }
      rate_prev_ = t;
      rate_at_ = now;
      if (profiler_ && store_) {  // for the profiles' maxsize accounting
        const auto st = store_->stats();
        if (st.rows_written > 0) {
          profiler_->setStoreBytesPerFlow(static_cast<double>(st.bytes_on_disk) /
                                          static_cast<double>(st.rows_written));
        }
      }
    });
  }

  void applyLogLevel() {
    log::Level l = log::Level::Info;
    if (log::parseLevel(opts_.config.log.level, l)) {
      log::setLevel(l);
    }
  }

  void waitSignal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) {
        return;
      }
      if (sig == SIGHUP) {
        reload();
        waitSignal();
        return;
      }
      log::info("daemon", "received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      io_.stop();
    });
  }

  void reload() {
    if (opts_.config_path.empty()) {
      log::warn("daemon", "SIGHUP: no config file was given, nothing to reload");
      return;
    }
    sd_notify(0, "RELOADING=1");
    auto res = config::loadFile(opts_.config_path);
    if (!res.ok()) {
      for (const auto& e : res.errors) {
        log::error("config", "{}", e.toString());
      }
      log::error("daemon", "reload of {} failed ({} error(s)); keeping the running config",
                 opts_.config_path, res.errors.size());
      sd_notify(0, "READY=1");
      return;
    }
    if (res.config == opts_.config) {
      log::info("daemon", "reload: {} unchanged", opts_.config_path);
    } else {
      // Sections bound to sockets, threads and files take effect at the next restart; the log
      // level and the OVS export declarations (bridges, ovsdb) apply now.
      if (!(res.config.control == opts_.config.control)) {
        log::warn("daemon", "reload: control changes take effect at the next restart");
        res.config.control = opts_.config.control;
      }
      if (!(res.config.collector == opts_.config.collector)) {
        log::warn("daemon", "reload: collector changes take effect at the next restart");
        res.config.collector = opts_.config.collector;
      }
      if (!(res.config.store == opts_.config.store)) {
        log::warn("daemon", "reload: store changes take effect at the next restart");
        res.config.store = opts_.config.store;
      }
      const bool http_changed = !(res.config.http == opts_.config.http);
      bool ovsdb_changed = !(res.config.ovsdb == opts_.config.ovsdb);
      bool bridges_changed = !(res.config.bridges == opts_.config.bridges) ||
                             !(res.config.correlation == opts_.config.correlation);
      if (res.config.correlation.enabled != opts_.config.correlation.enabled) {
        log::warn("daemon",
                  "reload: turning correlation on or off takes effect at the next restart");
        res.config.correlation.enabled = opts_.config.correlation.enabled;
      }
      if (correlator_ && !(res.config.correlation == opts_.config.correlation)) {
        if (!correlator_->reconfigure(toCorrelatorOptions(res.config.correlation))) {
          log::warn("daemon",
                    "reload: correlation step and active_timeout take effect at the next restart");
        }
        if (events_) {
          events_->setWebhook(res.config.correlation.webhook);
        }
      }
      if (!(res.config.profiles == opts_.config.profiles)) {
        config::ProfilesConfig& p = res.config.profiles;
        const config::ProfilesConfig& cur = opts_.config.profiles;
        if (p.path != cur.path || p.step_ms != cur.step_ms || p.delay_ms != cur.delay_ms ||
            p.max_span_ms != cur.max_span_ms) {
          log::warn("daemon",
                    "reload: profiles path, step, delay and max_span take effect at the next "
                    "restart");
          p.path = cur.path;
          p.step_ms = cur.step_ms;
          p.delay_ms = cur.delay_ms;
          p.max_span_ms = cur.max_span_ms;
        }
        if (profiler_ && !(p.declared == cur.declared)) {
          for (const auto& m : profiler_->setDeclared(p.declared, unixNowNs())) {
            log::warn("profile", "{}", m);
          }
          log::info("profile", "reload: {} declared profile(s) applied", p.declared.size());
        }
      }
      const config::HttpConfig old_http = opts_.config.http;
      opts_.config = std::move(res.config);
      applyLogLevel();
      if (http_changed) {
        try {
          startHttp();
        } catch (const std::exception& e) {
          log::error("http", "{}; keeping the previous HTTP settings", e.what());
          opts_.config.http = old_http;
          startHttp();
        }
      }
      if (ovsdb_changed) {
        provisioner_.reset();  // exports stay in place; the new endpoint is reconciled from scratch
        startProvisioner();
      } else if (bridges_changed && provisioner_) {
        provisioner_->reconfigure(config::effectiveBridgeRules(opts_.config));
      }
      ++reloads_;
      log::info("daemon", "reloaded {}", opts_.config_path);
    }
    sd_notify(0, "READY=1");
  }

  // (Re)starts the HTTP server from opts_.config.http: /metrics now, the dashboard later. Throws
  // std::runtime_error naming the address when it cannot listen.
  void startHttp() {
    if (http_) {
      http_->stop();
      http_.reset();
    }
    const config::HttpConfig& c = opts_.config.http;
    if (!c.enabled) {
      return;
    }
    http::ServerOptions o;
    const size_t colon = c.listen.rfind(':');  // validated: host:port, [v6]:port
    o.address = c.listen.substr(0, colon);
    if (o.address.size() >= 2 && o.address.front() == '[' && o.address.back() == ']') {
      o.address = o.address.substr(1, o.address.size() - 2);
    }
    o.port = static_cast<uint16_t>(std::stoul(c.listen.substr(colon + 1)));
    o.token = c.token;
    if (!c.token_file.empty()) {
      std::ifstream f(c.token_file);
      if (!f || !std::getline(f, o.token) || o.token.empty()) {
        throw std::runtime_error(
            fmt::format("http: cannot read a token from {} (http.token_file)", c.token_file));
      }
    }
    http_ = std::make_unique<http::Server>(io_, o);
    http::serveMetrics(*http_, metrics_);
    if (!dashboard_) {
      dashboard::Sources src;
      src.profiler = profiler_.get();
      src.store_path = store_ ? opts_.config.store.path : std::string();
      src.events = [this](const nlohmann::json& req) {
        return events_ ? events_->query(req)
                       : EventHub::queryDir(opts_.config.store.path + "/events", req);
      };
      src.status = [this] { return statusJson(); };
      dashboard_ = std::make_unique<dashboard::Dashboard>(io_, std::move(src));
    }
    dashboard_->install(*http_);
    http_->start();
    log::info("http", "dashboard and /metrics on http://{}:{}/{}",
              o.address.find(':') != std::string::npos ? "[" + o.address + "]" : o.address,
              http_->port(), o.token.empty() ? " (read-only)" : "");
  }

  // Every subsystem's counters for /metrics (rendered on the control thread: snapshots only).
  void registerMetrics() {
    using metrics::MetricType;
    using metrics::Unit;
    metrics_.add("ingest", [this](metrics::MetricWriter& w) { ingest::writeMetrics(*ingest_, w); });
    metrics_.add("http", [this](metrics::MetricWriter& w) {
      if (http_) {
        http_->writeMetrics(w);
      }
    });
    metrics_.add("daemon", [this](metrics::MetricWriter& w) {
      const auto up = std::chrono::system_clock::now() - started_;
      w.family("uptime", MetricType::kGauge, Unit::kSeconds, "Time since the daemon started")
          .add(std::chrono::duration<double>(up).count());
      w.family("config_reloads", MetricType::kCounter, Unit::kNone, "Successful config reloads")
          .add(reloads_);
    });
    metrics_.add("store", [this](metrics::MetricWriter& w) {
      if (!store_) {
        return;
      }
      metrics::writeStats(w, "store", store_->stats());
    });
    metrics_.add("ovsdb", [this](metrics::MetricWriter& w) {
      if (!provisioner_) {
        return;
      }
      const nlohmann::json s = provisioner_->status();
      const std::string state = s.value("state", "");
      w.family("ovsdb_connected", MetricType::kGauge, Unit::kNone,
               "1 while the OVSDB session is connected")
          .add(state == "connected" ? 1 : 0);
      w.family("ovsdb_synced", MetricType::kGauge, Unit::kNone,
               "1 once the OVSDB replica is in sync")
          .add(s.value("synced", false) ? 1 : 0);
      metrics::writeStats(w, "ovsdb", provisioner_->stats());
      size_t bridges = 0;
      if (s.contains("bridges") && s["bridges"].is_array()) {
        bridges = s["bridges"].size();
      }
      w.family("provisioned_bridges", MetricType::kGauge, Unit::kNone,
               "Bridges the provisioning plan covers")
          .add(bridges);
    });
    metrics_.add("profile", [this](metrics::MetricWriter& w) {
      if (profiler_) {
        profiler_->writeMetrics(w);
      }
    });
    metrics_.add("correlation", [this](metrics::MetricWriter& w) {
      if (!correlator_) {
        return;
      }
      const nlohmann::json s = correlator_->status();
      w.family("correlation_subjects", MetricType::kGauge, Unit::kNone,
               "Ports and addresses the spike detectors follow")
          .add({{"kind", "port"}}, s["subjects"].value("ports", uint64_t{0}));
      w.family("correlation_subjects", MetricType::kGauge, Unit::kNone, "")
          .add({{"kind", "address"}}, s["subjects"].value("addresses", uint64_t{0}));
      metrics::writeStats(w, "correlation", correlator_->stats());
    });
  }

  void registerCommands() {
    control_->on("status", "daemon status: version, uptime, config, ingest totals",
                 [this](const auto&) { return statusJson(); });
    control_->on("exporters", "per-exporter statistics", [this](const auto&) {
      ingest_->refreshStats();
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : ingest_->exporters()) {
        out.push_back(exporterJson(e));
      }
      return out;
    });
    control_->on("interfaces",
                 "exporters' interfaces: names (IPFIX/v9 interfaceName, sFlow port name) and the "
                 "latest sFlow interface counters with rates",
                 [this](const auto&) {
                   nlohmann::json out = nlohmann::json::array();
                   for (const auto& e : interfaces()) {
                     out.push_back(interfaceJson(e));
                   }
                   return out;
                 });
    control_->on("recent", "the newest decoded flows: {\"limit\": N}", [this](const auto& req) {
      size_t limit = req.value("limit", size_t{100});
      std::vector<FlowRecord> flows;
      for (const auto& r : recent_) {
        r->copyTo(flows, limit);
      }
      std::sort(flows.begin(), flows.end(), [](const FlowRecord& a, const FlowRecord& b) {
        return a.received_ns < b.received_ns;
      });
      if (flows.size() > limit) {
        flows.erase(flows.begin(), flows.end() - static_cast<std::ptrdiff_t>(limit));
      }
      nlohmann::json out = nlohmann::json::array();
      for (const auto& f : flows) {
        out.push_back(toJson(f));
      }
      return out;
    });
    control_->on(
        "provision", "OVSDB provisioning: connection, bridges, desired vs actual",
        [this](const auto&) {
          if (!provisioner_) {
            return nlohmann::json{{"enabled", false}, {"endpoint", opts_.config.ovsdb.endpoint}};
          }
          return provisioner_->status();
        });
    control_->on("ports",
                 "Open vSwitch ports from the inventory with their VM, link state and rates",
                 [this](const auto&) { return portsJson(); });
    control_->on("events",
                 "traffic-spike events from the event log: {\"since\",\"until\",\"port\",\"vm\","
                 "\"limit\"}",
                 [this](const nlohmann::json& req) {
                   if (!events_) {  // detection is off: the log of earlier runs, read only
                     return EventHub::queryDir(opts_.config.store.path + "/events", req);
                   }
                   return events_->query(req);
                 });
    control_->onStream(
        "events.follow", "new events as they start and end: {\"port\",\"vm\"}",
        [this](const nlohmann::json& req, std::shared_ptr<control::Stream> s) {
          if (!events_) {
            throw std::runtime_error("spike detection is off (correlation.enabled: false)");
          }
          events_->subscribe(req, std::move(s));
        });
    control_->on(
        "profile",
        "profiles and channels: {\"op\": list|add|channel-add|channel-delete|modify|"
        "commit|discard|delete|graph|status, ...} (collector/profile/profiler.hpp)",
        [this](const nlohmann::json& req) {
          if (!profiler_) {
            throw std::runtime_error(profiles_error_.empty()
                                         ? std::string("profiles are off")
                                         : fmt::format("profiles are off: {}", profiles_error_));
          }
          return profiler_->control(req);
        });
    control_->on("config", "the effective configuration as YAML", [this](const auto&) {
      return nlohmann::json{
          {"yaml", config::dump(opts_.config) + runtimeProfilesComment(opts_.config)}};
    });
  }

  nlohmann::json statusJson() {
    auto now = std::chrono::system_clock::now();
    nlohmann::json listen = nlohmann::json::array();
    auto ports = ingest_->boundPorts();
    for (size_t i = 0; i < ports.size(); ++i) {
      listen.push_back({{"address", opts_.config.collector.listen[i].address}, {"port", ports[i]}});
    }
    ingest_->refreshStats();
    auto t = ingest_->totals();
    nlohmann::json ingest = metrics::toJson(t);  // every ShardStats counter
    ingest.update({{"interfaces", interfaces().size()},
                   {"datagrams_per_s", rate_datagrams_},
                   {"records_per_s", rate_records_}});
    nlohmann::json ovsdb = provisioner_ ? provisioner_->status()
                                        : nlohmann::json{{"enabled", false},
                                                         {"endpoint", opts_.config.ovsdb.endpoint}};
    return nlohmann::json{
        {"version", kVersion},
        {"revision", kGitRevision},
        {"pid", ::getpid()},
        {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(now - started_).count()},
        {"config", opts_.config_path},
        {"reloads", reloads_},
        {"http",
         {{"enabled", http_ != nullptr},
          {"listen", opts_.config.http.listen},
          {"port", http_ ? http_->port() : 0}}},
        {"listen", listen},
        {"ingest", ingest},
        {"store", storeJson(opts_.config.store.path, store_.get(), store_error_)},
        {"ovsdb", ovsdb},
        {"inventory", inventory_ ? inventory_->status() : nlohmann::json()},
        {"correlation", correlationStatus()},
        {"profiles", profilesStatus()},
    };
  }

  nlohmann::json profilesStatus() const {
    if (!profiler_) {
      return {{"enabled", false}, {"path", opts_.config.profiles.path}, {"error", profiles_error_}};
    }
    nlohmann::json j = profiler_->status();
    j["enabled"] = true;
    return j;
  }

  nlohmann::json correlationStatus() const {
    if (!correlator_) {
      return {{"enabled", false}};
    }
    nlohmann::json j = correlator_->status();
    j["enabled"] = true;
    nlohmann::json ongoing = nlohmann::json::array();
    for (auto& e : correlator_->ongoing()) {
      if (events_) {
        e.id = events_->idOf(e);
      }
      ongoing.push_back(events::toJson(e));
    }
    j["ongoing_events"] = std::move(ongoing);
    if (events_) {
      j["events"] = events_->status();
    }
    return j;
  }

  // `ports`: every inventory port with rates from the flows (correlator steps) and from sFlow
  // counters (the local exporter's samples for the port's ifindex).
  nlohmann::json portsJson() const {
    nlohmann::json out = nlohmann::json::array();
    if (!inventory_) {
      return out;
    }
    auto snap = inventory_->snapshot();
    std::unordered_map<std::string, correlate::Correlator::PortRate> rates;
    if (correlator_) {
      rates = correlator_->portRates();
    }
    std::map<uint32_t, InterfaceEntry> counters;  // by ifindex, local exporters only
    for (const auto& e : interfaces()) {
      if (e.has_counters && e.counters.has_generic && snap->isLocal(e.exporter)) {
        counters[e.if_index] = e;
      }
    }
    for (const auto& p : snap->ports) {
      nlohmann::json j = inventory::toJson(p);
      nlohmann::json flows = nullptr;
      if (auto it = rates.find(p.name); it != rates.end()) {
        flows = {{"in_bps", it->second.in_bps},
                 {"in_pps", it->second.in_pps},
                 {"out_bps", it->second.out_bps},
                 {"out_pps", it->second.out_pps}};
      }
      j["rates_flows"] = flows;
      nlohmann::json sflow = nullptr;
      if (auto it = counters.find(static_cast<uint32_t>(std::max<int64_t>(0, p.ifindex)));
          p.ifindex > 0 && it != counters.end()) {
        // sFlow counters are the interface's view: "in" = received on the port (traffic the
        // port sends into the switch), as the flows' input interface.
        sflow = {{"in_bps", it->second.in_bps},
                 {"in_pps", it->second.in_pps},
                 {"out_bps", it->second.out_bps},
                 {"out_pps", it->second.out_pps}};
      }
      j["rates_sflow"] = sflow;
      out.push_back(std::move(j));
    }
    return out;
  }

  std::vector<InterfaceEntry> interfaces() const {
    std::vector<InterfaceEntry> all;
    for (const auto& t : interfaces_) {
      t->snapshot(all);
    }
    return mergeInterfaces(std::move(all));
  }

  Options opts_;
  std::chrono::system_clock::time_point started_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  PeriodicTimer rate_timer_;
  std::unique_ptr<control::ControlServer> control_;
  metrics::MetricsRegistry metrics_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<dashboard::Dashboard> dashboard_;  // after profiler_/store_ are set up
  std::vector<std::unique_ptr<RecentRing>> recent_;
  std::vector<std::unique_ptr<InterfaceTable>> interfaces_;
  std::unique_ptr<ovsctl::Provisioner> provisioner_;
  std::unique_ptr<inventory::Inventory> inventory_;
  std::unique_ptr<EventHub> events_;
  std::unique_ptr<correlate::Correlator> correlator_;
  std::unique_ptr<store::Writer> store_;
  std::string store_error_;  // why the store could not be opened
  // Before ingest_ (destroyed after it): the shards' sinks append to the store and the profiler
  // until they stop.
  std::unique_ptr<profile::Profiler> profiler_;
  std::string profiles_error_;
  std::unique_ptr<ingest::Ingest> ingest_;
  ingest::ShardStats rate_prev_;
  std::chrono::steady_clock::time_point rate_at_ = std::chrono::steady_clock::now();
  double rate_datagrams_ = 0;
  double rate_records_ = 0;
  uint64_t reloads_ = 0;
};

}  // namespace

std::string runtimeProfilesComment(const config::Config& config) {
  const std::string& dir = config.profiles.path;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(dir) / "profiles.json", ec)) {
    return "";
  }
  profile::ProfileStore store(dir);
  std::string why;
  if (!store.load(&why)) {
    return fmt::format("# runtime profiles: {}\n", why);
  }
  std::vector<profile::ProfileDef> runtime;
  for (const auto& p : store.all()) {
    if (!p.declared && p.committed) {
      runtime.push_back(p.def);
    }
  }
  if (runtime.empty()) {
    return "";
  }
  std::string out = fmt::format(
      "# Profiles managed at runtime with `net-collector profile` ({}/profiles.json). Not part\n"
      "# of this file; to declare one here instead, move it under profiles.declared and run\n"
      "# `net-collector profile delete NAME`.\n"
      "# runtime:\n",
      dir);
  const std::string yaml = config::dumpProfiles(runtime);
  size_t pos = 0;
  while (pos < yaml.size()) {
    size_t nl = yaml.find('\n', pos);
    if (nl == std::string::npos) {
      nl = yaml.size();
    }
    out += "#   " + yaml.substr(pos, nl - pos) + "\n";
    pos = nl + 1;
  }
  return out;
}

int run(Options options) {
  Daemon d(std::move(options));
  return d.run();
}

}  // namespace nc::daemon
