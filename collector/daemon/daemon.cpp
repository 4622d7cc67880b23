#include "collector/daemon/daemon.hpp"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <memory>

#include "collector/control/control.hpp"
#include "common/log.hpp"
#include "common/version.hpp"

namespace nc::daemon {
namespace {

class Daemon {
 public:
  explicit Daemon(Options opts)
      : opts_(std::move(opts)),
        started_(std::chrono::system_clock::now()),
        signals_(io_, SIGINT, SIGTERM, SIGHUP) {}

  int run() {
    applyLogLevel();
    control_ = std::make_unique<control::ControlServer>(io_, opts_.config.control.socket);
    registerCommands();
    control_->start();
    waitSignal();
    log::info("daemon", "net-collectord {} started (pid {}, config {}, control {})", kVersion,
              ::getpid(), opts_.config_path.empty() ? "(defaults)" : opts_.config_path,
              control_->path());
    sd_notify(0, "READY=1\nSTATUS=running");
    io_.run();
    sd_notify(0, "STOPPING=1");
    control_->stop();
    log::info("daemon", "stopped");
    return 0;
  }

 private:
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
      if (!(res.config.control == opts_.config.control)) {
        log::warn("daemon", "reload: control.socket changes take effect at the next restart");
        res.config.control = opts_.config.control;
      }
      opts_.config = std::move(res.config);
      applyLogLevel();
      ++reloads_;
      log::info("daemon", "reloaded {}", opts_.config_path);
    }
    sd_notify(0, "READY=1");
  }

  void registerCommands() {
    control_->on("status", "daemon status: version, uptime, config, components",
                 [this](const auto&) {
                   auto now = std::chrono::system_clock::now();
                   nlohmann::json listen = nlohmann::json::array();
                   for (const auto& l : opts_.config.collector.listen) {
                     listen.push_back({{"address", l.address}, {"port", l.port}});
                   }
                   return nlohmann::json{
                       {"version", kVersion},
                       {"revision", kGitRevision},
                       {"pid", ::getpid()},
                       {"uptime_s",
                        std::chrono::duration_cast<std::chrono::seconds>(now - started_).count()},
                       {"config", opts_.config_path},
                       {"reloads", reloads_},
                       {"listen", listen},
                       {"store", opts_.config.store.path},
                       {"ovsdb",
                        {{"enabled", opts_.config.ovsdb.enabled},
                         {"endpoint", opts_.config.ovsdb.endpoint}}},
                   };
                 });
    control_->on("config", "the effective configuration as YAML", [this](const auto&) {
      return nlohmann::json{{"yaml", config::dump(opts_.config)}};
    });
  }

  Options opts_;
  std::chrono::system_clock::time_point started_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  std::unique_ptr<control::ControlServer> control_;
  uint64_t reloads_ = 0;
};

}  // namespace

int run(Options options) {
  Daemon d(std::move(options));
  return d.run();
}

}  // namespace nc::daemon
