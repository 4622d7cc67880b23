#pragma once
// File-level helpers shared by the store's Writer and Reader (internal to nc_store): directory
// listing, positional reads, footer lookup and the sequential crash-recovery scan described in
// format.hpp.
#include <cstdint>
#include <string>
#include <vector>

#include "collector/store/format.hpp"

namespace nc::store::io {

struct SegmentFile {
  std::string path;
  bool complete = false;  // .ncseg (true) or .ncseg.open (false)
  uint64_t size = 0;
  uint64_t mtime_ns = 0;
};
// Segment files in `dir`, oldest first (names sort chronologically). Missing dir = empty.
std::vector<SegmentFile> listSegmentFiles(const std::string& dir);

// pread until `len` bytes are read; false on error or EOF.
bool preadAll(int fd, void* buf, size_t len, uint64_t offset);
// write until done at `offset`; false (errno set) on error.
bool pwriteAll(int fd, const void* buf, size_t len, uint64_t offset);
// fsync a directory.
bool syncDir(const std::string& dir);

struct BlockRef {
  uint64_t offset = 0;
  uint32_t length = 0;
  format::FlowBlockInfo info;
};
struct SequentialScan {
  bool header_ok = false;
  format::FileHeader header;
  std::vector<BlockRef> blocks;  // good flow blocks, in file order
  uint64_t unknown = 0;          // good frames of unknown type/version (skipped)
  uint64_t good_end = 0;         // end of the last good frame (>= header size when header_ok)
  bool clean_end = false;        // stopped at EOF or at the footer, not at a bad frame
  std::string stop_reason;       // why it stopped early ("" when clean_end)
  uint64_t bytes_read = 0;
};
// Reads the header, then frames from offset 64 up to `size`, verifying each checksum, and stops
// at the first bad or truncated frame or at a footer (the crash-recovery rule).
SequentialScan scanSequential(int fd, uint64_t size);

// Reads and checks trailer + footer of a complete segment.
bool readFooter(int fd, uint64_t size, format::Footer& footer, uint64_t& footer_offset,
                uint64_t& bytes_read, std::string* why);

}  // namespace nc::store::io
