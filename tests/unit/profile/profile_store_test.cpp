// ProfileStore: nfsen-style add / channel add / commit, persistence across instances, the rules
// for YAML-declared profiles, hostile input, a corrupt file and a full disk (RLIMIT_FSIZE makes
// writes fail with EFBIG, as a full file system would with ENOSPC).
#include "collector/profile/profile_store.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "collector/profile/rrd.hpp"
#include "tests/support/support.hpp"

namespace nc::profile {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kNow = 1'800'000'000'000'000'000ull;  // 2027-01-15

ChannelDef channel(std::string name, std::string filter, char sign = '+', uint32_t order = 0) {
  ChannelDef c;
  c.name = std::move(name);
  c.filter = std::move(filter);
  c.sign = sign;
  c.order = order;
  return c;
}

ProfileDef profile(std::string name) {
  ProfileDef d;
  d.name = std::move(name);
  return d;
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes larger than `bytes` fail with EFBIG (SIGXFSZ ignored) while it lives.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old_);
    rlimit l = old_;
    l.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &l);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

TEST(ProfileStore, AddChannelsCommitAndReload) {
  test::TempDir dir("profile-store");
  {
    ProfileStore st(dir.path().string());
    std::string why;
    ASSERT_TRUE(st.load(&why)) << why;
    ProfileDef d = profile("web");
    d.group = "svc";
    d.channels = {channel("http", "port 80")};
    ASSERT_TRUE(st.addProfile(d, kNow).ok);
    EXPECT_TRUE(st.running().empty());  // "new" until committed
    ASSERT_TRUE(st.addChannel("web", channel("https", "port 443", '+', 1), kNow).ok);
    ASSERT_TRUE(st.addChannel("web", channel("dns", "port 53", '-'), kNow).ok);
    OpResult r = st.commit("web", kNow + 5);
    ASSERT_TRUE(r.ok) << r.error;
    auto run = st.running();
    ASSERT_EQ(run.size(), 1u);
    const ProfileDef& w = run[0].def;
    EXPECT_EQ(w.start_ns, kNow);  // a continuous profile starts when committed (whole seconds)
    ASSERT_EQ(w.channels.size(), 3u);
    // "https" was inserted at order 1: it comes first among the '+' channels.
    EXPECT_EQ(w.channels[1].name, "https");
    EXPECT_EQ(w.channels[1].order, 1u);
    EXPECT_EQ(w.channels[0].order, 2u);
    EXPECT_EQ(w.channels[2].order, 1u);  // the first '-'
    // A change to a committed profile is staged: the running definition stays until commit.
    ASSERT_TRUE(st.deleteChannel("web", "http").ok);
    EXPECT_EQ(st.running()[0].def.channels.size(), 3u);
    EXPECT_TRUE(st.find("web")->staged.has_value());
  }
  // A second instance reads the same state back.
  ProfileStore again(dir.path().string());
  std::string why;
  ASSERT_TRUE(again.load(&why)) << why;
  const StoredProfile* p = again.find("web");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->committed);
  EXPECT_EQ(p->def.group, "svc");
  EXPECT_EQ(p->def.channels.size(), 3u);
  ASSERT_TRUE(p->staged.has_value());
  EXPECT_EQ(p->staged->channels.size(), 2u);
  EXPECT_EQ(p->created_ns, kNow);
  EXPECT_EQ(p->tstart_ns, kNow);
  ASSERT_TRUE(again.commit("web", kNow + 10'000'000'000ull).ok);
  EXPECT_EQ(again.running()[0].def.channels.size(), 2u);
  EXPECT_EQ(again.running()[0].def.start_ns, kNow);  // the start does not move
  ASSERT_TRUE(again.deleteProfile("web").ok);
  EXPECT_EQ(again.find("web"), nullptr);
  ProfileStore third(dir.path().string());
  ASSERT_TRUE(third.load(&why));
  EXPECT_TRUE(third.all().empty());
}

TEST(ProfileStore, DeclaredProfilesAreReadOnlyAndWin) {
  test::TempDir dir("profile-declared");
  ProfileStore st(dir.path().string());
  std::string why;
  ASSERT_TRUE(st.load(&why));
  ProfileDef rt = profile("both");
  rt.channels = {channel("a", "any")};
  ASSERT_TRUE(st.addProfile(rt, kNow).ok);
  ASSERT_TRUE(st.commit("both", kNow).ok);
  ProfileDef decl = profile("decl");
  decl.channels = {channel("x", "proto udp")};
  auto warnings = st.setDeclared({decl}, kNow);
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(st.running().size(), 2u);
  for (const OpResult& r : {st.addProfile(profile("decl"), kNow), st.deleteProfile("decl"),
                            st.addChannel("decl", channel("y", "any"), kNow),
                            st.deleteChannel("decl", "x"), st.commit("decl", kNow)}) {
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("declared in the configuration file"), std::string::npos) << r.error;
  }
  // The declared profile's start is remembered across instances.
  EXPECT_EQ(st.find("decl")->def.start_ns, kNow);
  // A reload that declares "both": the YAML one runs, the runtime one is kept but shadowed.
  ProfileDef both = profile("both");
  both.channels = {channel("b", "proto tcp")};
  warnings = st.setDeclared({decl, both}, kNow + 1);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("kept but not run"), std::string::npos) << warnings[0];
  auto run = st.running();
  ASSERT_EQ(run.size(), 2u);
  for (const auto& p : run) {
    EXPECT_TRUE(p.declared);
  }
  ProfileStore again(dir.path().string());
  ASSERT_TRUE(again.load(&why));
  again.setDeclared({decl}, kNow + 3600'000'000'000ull);
  EXPECT_EQ(again.find("decl")->created_ns, kNow);
  EXPECT_EQ(again.find("decl")->def.start_ns, kNow);
}

TEST(ProfileStore, HostileInputIsRefusedWithReasons) {
  test::TempDir dir("profile-hostile");
  ProfileStore st(dir.path().string());
  std::string why;
  ASSERT_TRUE(st.load(&why));
  struct Case {
    ProfileDef def;
    std::string expect;
  };
  std::vector<Case> cases;
  cases.push_back({profile("../etc"), "may only contain"});
  cases.push_back({profile(""), "must not be empty"});
  cases.push_back({profile(std::string(200, 'x')), "longer than 64"});
  ProfileDef bad_filter = profile("f");
  bad_filter.channels = {channel("c", "src ip 10.0.0.300")};
  cases.push_back({bad_filter, "channels[0].filter: filter:1:8:"});
  ProfileDef bad_colour = profile("c");
  bad_colour.channels = {channel("c", "any")};
  bad_colour.channels[0].colour = "#zzzzzz";
  cases.push_back({bad_colour, "channels[0].colour"});
  ProfileDef dup = profile("d");
  dup.channels = {channel("c", "any"), channel("c", "any")};
  cases.push_back({dup, "duplicate channel name"});
  ProfileDef future = profile("h");
  future.type = ProfileType::kHistory;
  future.start_ns = kNow;
  future.end_ns = kNow + 3600'000'000'000ull;
  cases.push_back({future, "must end in the past"});
  ProfileDef many = profile("m");
  for (int i = 0; i < 300; ++i) {
    many.channels.push_back(channel("c" + std::to_string(i), "any"));
  }
  cases.push_back({many, "at most 256 channels"});
  for (const auto& c : cases) {
    OpResult r = st.addProfile(c.def, kNow);
    EXPECT_FALSE(r.ok) << c.expect;
    EXPECT_NE(r.error.find(c.expect), std::string::npos) << r.error;
  }
  EXPECT_TRUE(st.all().empty());
  ASSERT_TRUE(st.addProfile(profile("ok"), kNow).ok);
  EXPECT_FALSE(st.addProfile(profile("ok"), kNow).ok);  // exists
  ChannelDef sign = channel("s", "any");
  sign.sign = 'x';
  EXPECT_NE(st.addChannel("ok", sign, kNow).error.find("sign"), std::string::npos);
  ChannelDef src = channel("s", "any");
  src.sources = {"10.1.2.3/99"};
  EXPECT_NE(st.addChannel("ok", src, kNow).error.find("prefix length"), std::string::npos);
  EXPECT_FALSE(st.addChannel("nope", channel("s", "any"), kNow).ok);
  EXPECT_FALSE(st.deleteChannel("ok", "nope").ok);
  EXPECT_FALSE(st.commit("nope", kNow).ok);
  // The channels-less profile may be committed (nfsen shows it as "stalled").
  EXPECT_TRUE(st.commit("ok", kNow).ok);
}

TEST(ProfileStore, CorruptFileIsReportedAndNeverOverwritten) {
  test::TempDir dir("profile-corrupt");
  const fs::path file = dir.path() / "profiles.json";
  {
    std::ofstream out(file);
    out << "{\"version\": 1, \"profiles\": [ {\"definition\": ";  // cut short
  }
  const std::string before = readFile(file);
  ProfileStore st(dir.path().string());
  std::string why;
  EXPECT_FALSE(st.load(&why));
  EXPECT_NE(why.find("not a JSON object"), std::string::npos) << why;
  OpResult r = st.addProfile(profile("x"), kNow);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("fix or remove the file"), std::string::npos) << r.error;
  EXPECT_EQ(readFile(file), before);
  {
    std::ofstream out(file);
    out << R"({"version": 99})";
  }
  ProfileStore st2(dir.path().string());
  EXPECT_FALSE(st2.load(&why));
  EXPECT_NE(why.find("unknown version 99"), std::string::npos) << why;
  {
    std::ofstream out(file);
    out << R"({"version": 1, "profiles": [{"definition": {"name": 7}}]})";
  }
  ProfileStore st3(dir.path().string());
  EXPECT_FALSE(st3.load(&why));
  EXPECT_NE(why.find("'name' must be a string"), std::string::npos) << why;
}

TEST(ProfileStore, FullDiskFailsTheOperationAndChangesNothing) {
  test::TempDir dir("profile-full");
  ProfileStore st(dir.path().string());
  std::string why;
  ASSERT_TRUE(st.load(&why));
  ASSERT_TRUE(st.addProfile(profile("kept"), kNow).ok);
  const std::string before = readFile(dir.path() / "profiles.json");
  ProfileDef big = profile("big");
  big.description = std::string(4000, 'd');
  OpResult r;
  {
    FileSizeLimit limit(1024);
    r = st.addProfile(big, kNow);
  }
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("cannot save the profiles"), std::string::npos) << r.error;
  EXPECT_EQ(st.find("big"), nullptr);
  EXPECT_NE(st.find("kept"), nullptr);
  EXPECT_EQ(readFile(dir.path() / "profiles.json"), before);
  EXPECT_FALSE(fs::exists(dir.path() / "profiles.json.tmp"));
  // Space again: the same operation works.
  EXPECT_TRUE(st.addProfile(big, kNow).ok);
}

// An RRD file that cannot be written whole is an error, never a crash or a partial file.
TEST(ProfileStore, FullDiskRrdCreateFails) {
  test::TempDir dir("profile-rrd-full");
  const std::string path = (dir.path() / "c.rrd").string();
  std::string why;
  bool ok = true;
  {
    FileSizeLimit limit(64 * 1024);
    ok = rrd::create(path, 10, 1'800'000'000, &why);
  }
  EXPECT_FALSE(ok);
  EXPECT_FALSE(why.empty());
  std::printf("[profile] rrd create under a 64 KiB file limit: %s\n", why.c_str());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_TRUE(rrd::create(path, 10, 1'800'000'000, &why)) << why;
  EXPECT_FALSE(rrd::create(path, 10, 1'800'000'000, &why));  // exists
  rrd::FileInfo fi;
  ASSERT_TRUE(rrd::inspect(path, fi, &why)) << why;
  EXPECT_TRUE(fi.layout_ok);
  EXPECT_EQ(fi.step_s, 10u);
  EXPECT_EQ(fi.last_update, 1'800'000'000);
  std::printf("[profile] channel file at a 10 s step: %llu bytes\n",
              static_cast<unsigned long long>(fi.bytes));
  // Update and read back (this binary runs under LeakSanitizer without suppressions: every
  // librrd result is freed).
  std::vector<rrd::Update> ups(3);
  for (size_t i = 0; i < ups.size(); ++i) {
    ups[i].t = 1'800'000'010 + static_cast<std::time_t>(i) * 10;
    ups[i].v.fill(static_cast<double>(i + 1));
  }
  ups[1].unknown = true;
  ASSERT_TRUE(rrd::update(path, ups, &why)) << why;
  EXPECT_FALSE(rrd::update(path, ups, &why));  // not after the last update: refused
  EXPECT_NE(why.find("illegal attempt to update"), std::string::npos) << why;
  rrd::Series s;
  ASSERT_TRUE(rrd::fetch(path, "AVERAGE", 1'800'000'000, 1'800'000'030, 10, s, &why)) << why;
  ASSERT_EQ(s.names.size(), 15u);
  ASSERT_GE(s.rows(), 3u);
  EXPECT_DOUBLE_EQ(s.at(0, 0), 1);
  EXPECT_TRUE(std::isnan(s.at(1, 0)));
  EXPECT_DOUBLE_EQ(s.at(2, 14), 3);
  EXPECT_FALSE(rrd::fetch((dir.path() / "none.rrd").string(), "AVERAGE", 1, 2, 10, s, &why));
  // Not an RRD: a clear error.
  {
    std::ofstream out(dir.path() / "junk.rrd");
    out << "junk";
  }
  EXPECT_FALSE(rrd::inspect((dir.path() / "junk.rrd").string(), fi, &why));
  EXPECT_FALSE(why.empty());
}

}  // namespace
}  // namespace nc::profile
