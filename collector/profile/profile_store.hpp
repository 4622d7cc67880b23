#pragma once
// ProfileStore: the profile definitions a daemon runs, nfsen-style: profiles declared in the YAML
// file (config/ `profiles.declared`) merged with the ones managed at runtime (the CLI adds and
// deletes profiles and channels, then commits), the latter kept in <dir>/profiles.json.
//
// Rules
// - Declared profiles are read-only here: every operation on one is refused ("declared in the
//   configuration file"); edit the YAML file and reload. A runtime profile may not take a
//   declared name; when a reload declares a name a runtime profile already has, the declared one
//   runs and the runtime one is kept but not run (status "shadowed by the configuration").
// - Changes are staged: add/delete channel and modify edit a staged copy; commit() validates it
//   and makes it the running definition (nfsen's `nfsen --commit`). A new profile is "new" until
//   its first commit. Deleting a profile takes effect at once.
// - A continuous or shadow profile without a start starts when first committed (declared ones:
//   when first loaded); that time is kept in the file, so a restart does not move it.
// - Every successful operation rewrites profiles.json atomically (temporary file, fsync, rename,
//   directory fsync). When that write fails (disk full, read-only) the operation fails and
//   nothing changes in memory. A corrupt file is never overwritten: load() reports it and every
//   later change fails until it is fixed or removed.
//
// Not thread-safe: the daemon calls it from its control-plane thread.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collector/profile/definition.hpp"

namespace nc::profile {

struct StoredProfile {
  ProfileDef def;                    // the running definition (staged one while never committed)
  std::optional<ProfileDef> staged;  // changes waiting for commit()
  bool declared = false;             // from the YAML file
  bool committed = false;            // false = nfsen's "new"
  bool shadowed = false;             // a runtime profile whose name the YAML file now declares
  uint64_t created_ns = 0;
  uint64_t committed_ns = 0;
  // Start of the profile's data: def.start_ns (set at first commit when it was 0), moved forward
  // by expire/maxsize (Profiler::maintain()).
  uint64_t tstart_ns = 0;
};

// An operation's outcome. `errors` lists validation problems (key paths inside the definition).
struct OpResult {
  bool ok = true;
  std::string error;  // one line; with validation errors, the first of them
  std::vector<DefError> errors;
  static OpResult fail(std::string e) {
    OpResult r;
    r.ok = false;
    r.error = std::move(e);
    return r;
  }
};

// Fields modify() may change on a committed profile.
struct ProfileChanges {
  std::optional<std::string> group;
  std::optional<std::string> description;
  std::optional<uint64_t> expire_ms;
  std::optional<uint64_t> maxsize;
};

class ProfileStore {
 public:
  // `dir`: the profiles directory (created by load() when missing).
  explicit ProfileStore(std::string dir);

  // Reads <dir>/profiles.json; a missing file is an empty store. False with `why` when the file
  // is unreadable or corrupt (see the rules above).
  bool load(std::string* why);
  // Sets the YAML-declared profiles (startup and each reload); they must be valid (config/
  // validated them). Returns warnings for the operator (shadowed runtime profiles).
  std::vector<std::string> setDeclared(const std::vector<ProfileDef>& declared, uint64_t now_ns);

  OpResult addProfile(const ProfileDef& def, uint64_t now_ns);
  OpResult deleteProfile(const std::string& name);
  // Inserts the channel at its order among the channels of its sign (0 = last) and renumbers.
  OpResult addChannel(const std::string& profile, const ChannelDef& ch, uint64_t now_ns);
  OpResult deleteChannel(const std::string& profile, const std::string& channel);
  OpResult modify(const std::string& profile, const ProfileChanges& changes, uint64_t now_ns);
  OpResult commit(const std::string& profile, uint64_t now_ns);
  // Drops the staged changes of a profile (a never-committed profile is deleted).
  OpResult discard(const std::string& profile);
  // The profiler moves a profile's data start (expire/maxsize); persisted.
  OpResult setDataStart(const std::string& profile, uint64_t tstart_ns);

  // Every profile, declared first, then runtime ones, each by name.
  std::vector<StoredProfile> all() const;
  const StoredProfile* find(const std::string& name) const;
  // The profiles to run: declared ones and committed, unshadowed runtime ones.
  std::vector<StoredProfile> running() const;
  const std::string& dir() const { return dir_; }
  std::string filePath() const;
  // Bumped by every change of running(): the profiler re-applies when it moves.
  uint64_t generation() const { return generation_; }

 private:
  // created/start of declared profiles, by name (kept across restarts).
  struct DeclaredState {
    std::string name;
    uint64_t created_ns = 0;
    uint64_t tstart_ns = 0;
  };
  // Writes `runtime` and `states` to the file; on success makes them current.
  OpResult persist(std::vector<StoredProfile> runtime, std::vector<DeclaredState> states);
  std::string dir_;
  std::vector<StoredProfile> declared_;
  std::vector<StoredProfile> runtime_;
  std::vector<DeclaredState> declared_state_;
  bool broken_ = false;
  std::string broken_why_;
  uint64_t generation_ = 1;
};

}  // namespace nc::profile
