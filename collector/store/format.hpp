#pragma once
// Segment file format, version 1 (internal to nc_store; tests include it to corrupt files).
//
// All integers are fixed-width little-endian. A segment holds the flows a Writer received during
// one rotation interval. Names sort chronologically:
//   flows-YYYYMMDDTHHMMSS.mmmZ.ncseg        complete (footer present, immutable)
//   flows-YYYYMMDDTHHMMSS.mmmZ.ncseg.open   being written, or left by a crash
//
//   +--------------------+ 0
//   | file header (64 B) |   magic "NCFLOWS\0", version, compression, created, partition
//   +--------------------+ 64
//   | frame: flow block  |   type 1   (repeated; appended and fdatasync'd every flush)
//   | frame: flow block  |
//   | ...                |
//   +--------------------+ footer_offset        (complete segments only from here on)
//   | frame: footer      |   type 2: time range, rows, block index with BlockSummary per block
//   +--------------------+
//   | trailer (24 B)     |   footer offset + length, crc, magic "NCSEGEND"
//   +--------------------+ EOF
//
// File header (64 bytes)
//   0  u8[8] magic "NCFLOWS\0"       16  u64 created_ns (wall clock)
//   8  u16   format version (1)      24  u64 partition_ns (start of the rotation interval)
//  10  u16   header length (64)      32  u64 rotate_ms
//  12  u8    compression 0/1/2       40  u32 block_rows
//  13  u8    reserved                44  u8[16] reserved (0)
//  14  u16   column count            60  u32 crc32c of bytes 0..59
//
// Frame (every block, and the footer)
//   0  u32 magic "NCBK"   4  u16 type   6  u16 version   8  u32 frame length (all, crc included)
//  12  u32 reserved       16  body ...                   end-4: u32 crc32c of bytes [0, end-4)
// Readers skip frames of unknown type or version (ScanStats.unknown_blocks), never fail on them.
//
// Flow block body (type 1, version 1 to 4): a FlowColumns batch, rows sorted by first_ns (the
// writer leaves blocks in arrival order while it is behind; flags bit 1 says which)
//   0  u32 rows    4  u16 column count n    6  u8 flags (1 = sorted by first_ns)   7 u8 reserved
//   8  u64 min first_ns    16  u64 max first_ns
//  24  n x column entry (E = 12 B, version 3: 16 B): u8 column id (nc::Column), u8 codec (0 none,
//      1 zstd, 2 lz4), u8 transform bits, u8 stored value width w, u32 encoded length, u32 raw
//      length; version 3 adds u32 crc32c of the column's encoded bytes
//  24+E*n  version 3 only: u32 crc32c of the frame from its first byte to the end of the column
//      entries (frame header, body head, entries)
//  then    the n encoded columns back to back
// A column's encoded bytes are the codec's output of its raw stream (raw length bytes; codec 0 =
// the raw stream itself); with 0x20 they are preceded by an uncompressed u64 base, and with 0x40
// then by an uncompressed u64 multiplier m >= 2 (both counted in the encoded length). The raw
// stream is rows x w bytes, except for 0x08 (one value) and 0x80 (bit-packed, below).
// Version 3 blocks still end with the frame crc32c (crash recovery reads whole frames), but a
// reader may instead check the table's crc and only the crcs of the columns it decodes, and so
// read only those columns' bytes (Reader::scan does; BlockDecoder checks them itself).
// Transform bits, applied before compression and undone after:
//   0x02 delta (first_ns only: v[i]-v[i-1] with v[-1] = 0, zigzag)
//   0x04 minus first_ns (last_ns, received_ns: v[i]-first_ns[i], zigzag)
//   0x20 narrow (version 2; integer columns): the values above (or the column's own) minus the
//        block minimum `base`, stored in w bytes, 1 <= w < the column's width. With 0x02 the
//        deltas instead start from v[-1] = base (the first row's value, so the first delta is 0)
//        and are stored as they are (no subtraction)
//   0x01 byte shuffle of the w-byte stored values (all byte 0s, then all byte 1s, ...)
//   0x08 constant (version 2, alone): every row holds the same value; the raw stream is that value
//        (the column's full width), codec 0
//   0x10 v4 only (version 2, addresses, with or without 0x01): every row is IPv4-mapped
//        (::ffff:a.b.c.d); stored as w = 4 bytes a b c d per row. Version 3 allows 0x20 with
//        it: row i is then base + its w-byte value (1 <= w <= 3) as the number a<<24|b<<16|c<<8|d
//   0x40 scale (version 3, integer columns, with 0x20): every value 0x20 would store (the value
//        minus base, or the delta) is stored divided by m (an exact division: the writer uses
//        it only when m divides all of them; times in whole ms or us and zigzag's factor 2)
//   0x80 bits (version 4, integer columns with w = 1, not with 0x01/0x08/0x10): the one-byte
//        values are packed to b bits each. The raw stream is then u8 b (1, 2 or 4), u8 k, k
//        dictionary bytes (k = 0: the code is the byte itself; 1 <= k <= 2^b: code c stands for
//        the byte dict[c], codes >= k make the block corrupt), and ceil(rows x b / 8) bytes of
//        codes, row 0 in the lowest bits of the first byte. Its raw length is therefore
//        2 + k + ceil(rows x b / 8), not rows x w.
// Without 0x08/0x10/0x20, w is the column's width (version 1 blocks always look like that).
// Version 1 blocks may only use 0x01, 0x02 and 0x04; a bit outside the block version's set makes
// the block corrupt (never rows decoded the wrong way). Readers decode versions 1 to 4; the
// Writer writes version 4 (readers from before a version skip its blocks as unknown).
// A column a block lacks reads as the FlowRecord default; unknown column ids are ignored, so
// columns can be added without a version bump.
//
// Name columns (nc::isNameColumn: in_ifname, out_ifname, bridge, in_vm, out_vm; added on
// 2026-12-07 without a version bump, older readers ignore them) hold per-process NameTable ids in
// memory. On disk a name column's encoded bytes start with the block's dictionary:
//   u32 dictionary length D (these 4 bytes included), u32 count k, k x (u8 length, bytes)
// followed by the column's codes stored like any u32 column under the rules above (base,
// multiplier, stream): code 0 = no name, code c in 1..k = the c-th dictionary entry; a code > k
// makes the block corrupt. The encoded length in the column entry (and the column crc) covers
// the dictionary too; the raw length is that of the codes. The footer's ranges for name columns
// are written as "any value" (ids mean nothing in another process).
//
// Encoder policy (not a format rule; readers accept any codec per column): the Writer keeps a
// column raw (codec 0) when its codec would not make it smaller, and with zstd also when zstd
// saves less than a fifth of the raw stream. The columns most queries read (times, packets,
// bytes, addresses, ports, protocol) are never zstd-compressed (nor lz4-compressed while the
// writer is behind: BlockEncoder::setHotColumnsRaw), and one-byte ones among them are
// bit-packed (0x80) when they fit 4 bits or a 16-entry dictionary: decoding zstd streams was
// about a quarter of a filtered query's time for 2-3 bytes a flow (block version 4).
//
// Footer body (type 2, version 1)
//   0  u64 min first_ns   8  u64 max first_ns   16 u64 rows   24 u32 block count
//  28  u16 column count c   30 u16 entry length L
//  32  block count x entry (L bytes): u64 frame offset, u32 frame length, u32 rows, then per
//      column in id order: integers u64 min + u64 max, addresses 16 B min + 16 B max
//      (BlockSummary). Columns past c read as "any value" so pruning never drops rows.
//
// Trailer (last 24 bytes): u64 footer offset, u32 footer frame length, u32 crc32c of those 12
// bytes, u8[8] "NCSEGEND".
//
// Crash-recovery rule for `.open` segments: read the header, then frames one after another from
// offset 64; a frame is good when its magic, length (within the file) and crc32c check out. Stop
// at the first bad or truncated frame: everything before it is valid, everything from it on is
// discarded (the Writer cuts it off when it seals the file after a restart).
#include <bit>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "collector/record/columns.hpp"
#include "collector/store/store.hpp"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace nc::store::format {

static_assert(std::endian::native == std::endian::little, "the store writes host order = LE");

inline constexpr char kFileMagic[8] = {'N', 'C', 'F', 'L', 'O', 'W', 'S', '\0'};
inline constexpr char kTrailerMagic[8] = {'N', 'C', 'S', 'E', 'G', 'E', 'N', 'D'};
inline constexpr uint32_t kFrameMagic = 0x4B42434E;  // "NCBK"
inline constexpr uint16_t kFormatVersion = 1;
inline constexpr size_t kHeaderSize = 64;
inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr size_t kFrameOverhead = kFrameHeaderSize + 4;
inline constexpr size_t kTrailerSize = 24;
inline constexpr uint16_t kTypeFlowBlock = 1;
inline constexpr uint16_t kTypeFooter = 2;
inline constexpr uint16_t kFlowBlockVersion = 4;  // written; readers accept 1 to 4
inline constexpr uint16_t kFooterVersion = 1;
inline constexpr uint32_t kMaxFrameSize = 1u << 30;
inline constexpr uint32_t kMaxBlockRows = 1u << 22;

inline constexpr const char* kSegmentSuffix = ".ncseg";
inline constexpr const char* kOpenSuffix = ".ncseg.open";

enum Codec : uint8_t { kCodecNone = 0, kCodecZstd = 1, kCodecLz4 = 2 };
enum Transform : uint8_t {
  kShuffle = 0x01,
  kDelta = 0x02,
  kMinusFirst = 0x04,
  kConstant = 0x08,  // version 2
  kV4Only = 0x10,    // version 2
  kNarrow = 0x20,    // version 2
  kScale = 0x40,     // version 3
  kBits = 0x80,      // version 4
};
// Transform bits each flow-block version may use; any other bit makes the block corrupt.
inline constexpr uint8_t kTransformsV1 = kShuffle | kDelta | kMinusFirst;
inline constexpr uint8_t kTransformsV2 = kTransformsV1 | kConstant | kV4Only | kNarrow;
inline constexpr uint8_t kTransformsV3 = kTransformsV2 | kScale;
inline constexpr uint8_t kTransformsV4 = kTransformsV3 | kBits;
// Flow-block versions this reader decodes (1: before 2026-11-27; 2 and 3: earlier on 2026-11-27;
// 4: what the Writer writes now).
inline constexpr bool isKnownFlowBlockVersion(uint16_t v) {
  return v >= 1 && v <= 4;
}
// Version 3 blocks carry a checksum per column and one over their column table: BlockDecoder
// verifies those itself (only for the columns it decodes), so a reader need not read, nor check
// the frame checksum of, the bytes of the other columns.
inline constexpr bool checksumsPerColumn(uint16_t v) {
  return v >= 3;
}

uint32_t crc32c(const void* data, size_t len, uint32_t crc = 0);

// Bytes of one row across all columns (raw, uncompressed).
size_t rowBytes();

struct FileHeader {
  uint16_t version = kFormatVersion;
  uint8_t compression = kCodecZstd;
  uint16_t column_count = 0;
  uint64_t created_ns = 0;
  uint64_t partition_ns = 0;
  uint64_t rotate_ms = 0;
  uint32_t block_rows = 0;
};
std::vector<uint8_t> encodeHeader(const FileHeader& h);
bool decodeHeader(std::span<const uint8_t> bytes, FileHeader& h, std::string* why);

struct FrameHeader {
  uint16_t type = 0;
  uint16_t version = 0;
  uint32_t length = 0;
};
// Checks the magic and a plausible length (>= overhead, <= kMaxFrameSize).
bool decodeFrameHeader(std::span<const uint8_t> bytes, FrameHeader& h, std::string* why);
// Checks the crc32c of a whole frame.
bool verifyFrame(std::span<const uint8_t> frame);
// Rewrites a frame's length field and every checksum in it (version 3 flow blocks: the table's
// and each column's, as far as the table's lengths stay inside the frame; then the frame's), so a
// deliberately altered frame reaches the decoder's other checks. For tests and fuzzing.
void resealFrame(std::vector<uint8_t>& frame);

// What a flow block's body says about itself without decompressing.
struct FlowBlockInfo {
  uint32_t rows = 0;
  uint64_t min_first_ns = 0;
  uint64_t max_first_ns = 0;
};
bool peekFlowBlock(std::span<const uint8_t> frame, FlowBlockInfo& info, std::string* why);

// The byte ranges of a version 3 flow-block frame that BlockDecoder::decode(.., columns) reads
// besides its head (frame header, block head, column table and table checksum): the stored bytes
// of each wanted column (and first_ns), ranges closer than `merge_gap` merged. `head` is the first
// bytes of the frame, `frame_length` its length. False when the frame is not a version 3 flow
// block or `head` does not hold the whole table (read the whole frame then; decode() reports any
// inconsistency). Ranges are {offset within the frame, length}, ascending.
struct ByteRange {
  uint32_t offset = 0;
  uint32_t length = 0;
};
bool columnRanges(std::span<const uint8_t> head, uint32_t frame_length, const ColumnSet& columns,
                  uint32_t merge_gap, std::vector<ByteRange>& out);

// Sorts every column of `c` by first_ns (stable).
void sortByFirstNs(FlowColumns& c);
// The stable sorting permutation of `times`: perm[k] is the index of the k-th smallest, equal
// times in index order (the identity for sorted times; else a radix sort for the spans blocks
// have).
void stableOrder(std::span<const uint64_t> times, std::vector<uint32_t>& perm);

// Encodes FlowColumns (already sorted) into one flow-block frame. Not thread-safe; one per thread.
class BlockEncoder {
 public:
  BlockEncoder(StoreOptions::Compression compression, int zstd_level);
  ~BlockEncoder();
  BlockEncoder(const BlockEncoder&) = delete;
  BlockEncoder& operator=(const BlockEncoder&) = delete;
  // `summary`, when given, must be c's BlockSummary (computed by the caller anyway for the footer
  // index): the encoder then takes column ranges from it instead of scanning the rows again.
  void encode(const FlowColumns& c, std::vector<uint8_t>& frame,
              const BlockSummary* summary = nullptr);
  // Codec for the following blocks (the writer falls back to faster ones when it falls behind).
  void setCodec(StoreOptions::Compression compression);
  // Block version to write: 4 (default), or an older one (tests and benchmarks use them to check
  // that old segments still read, and to compare).
  void setVersion(uint16_t version) { version_ = version; }
  // Leaves the hot columns (times, counters, addresses, ports, protocol) uncompressed whatever
  // the codec (block version 4; with zstd they always are): the writer does so while behind,
  // when lz4 on every column would cost more than zstd on the cold ones.
  void setHotColumnsRaw(bool raw) { hot_raw_ = raw; }
  // A column whose compression did not pay in one block is stored raw without trying in the
  // next kSkipAfterMiss blocks this encoder writes (random MAC addresses, say: the codec would
  // run over them in every block for nothing). A change of codec tries every column again.
  static constexpr uint8_t kSkipAfterMiss = 15;
  // Compressions that did not pay, and that were skipped, so far.
  struct Tries {
    uint64_t missed = 0;
    uint64_t skipped = 0;
  };
  const Tries& tries() const { return tries_; }

 private:
  uint8_t codec_;
  int level_;
  uint16_t version_;
  bool hot_raw_ = false;
  ZSTD_CCtx_s* zctx_ = nullptr;
  std::vector<uint64_t> wide_;
  std::vector<uint8_t> tmp_;
  std::vector<uint8_t> packed_;
  std::vector<uint64_t> scratch_;
  std::vector<uint32_t> name_codes_;  // a name column as dictionary codes
  std::vector<uint8_t> name_dict_;    // its dictionary, as stored
  std::vector<uint8_t> bits_;
  std::array<uint8_t, kColumnCount> skip_{};  // blocks left to store the column raw untried
  Tries tries_;
};

// Decodes a flow-block frame (crc already verified) into `out`. Not thread-safe; one per thread.
class BlockDecoder {
 public:
  BlockDecoder();
  ~BlockDecoder();
  BlockDecoder(const BlockDecoder&) = delete;
  BlockDecoder& operator=(const BlockDecoder&) = delete;
  // Only the columns in `columns` (plus first_ns, always) are decompressed; the vectors of the
  // others are cleared (left EMPTY, not filled with defaults). Every column entry is still checked
  // for consistency, so a block that is corrupt fails whatever the set.
  bool decode(std::span<const uint8_t> frame, FlowColumns& out, std::string* why,
              const ColumnSet& columns = allColumns());
  // Late materialization. `out` holds what decode(frame, out, why, decoded) gave (every row of
  // the columns `decoded` and first_ns); this decodes the columns of `more` it lacks only at the
  // rows `sel` (ascending row numbers of the block) and keeps the decoded ones at those rows:
  // `out` then holds sel.size() rows, as if decode() had been followed by keeping rows `sel`.
  // The same checks as decode() for the columns it reads.
  bool decodeRows(std::span<const uint8_t> frame, FlowColumns& out, std::string* why,
                  const ColumnSet& decoded, const ColumnSet& more, std::span<const uint32_t> sel);

 private:
  bool decodeImpl(std::span<const uint8_t> frame, FlowColumns& out, std::string* why,
                  const ColumnSet& columns, const ColumnSet& have, std::span<const uint32_t> sel);
  ZSTD_DCtx_s* dctx_ = nullptr;
  std::vector<uint8_t> raw_;
  std::vector<uint8_t> codes_;      // kBits columns expanded to one byte a row
  std::vector<uint32_t> name_ids_;  // a name column's dictionary as this process's NameTable ids
};

struct IndexEntry {
  uint64_t offset = 0;
  uint32_t length = 0;
  BlockSummary summary;
};
struct Footer {
  uint64_t min_first_ns = 0;
  uint64_t max_first_ns = 0;
  uint64_t rows = 0;
  std::vector<IndexEntry> blocks;
};
// Footer frame followed by the trailer, for a footer frame that starts at `offset`.
std::vector<uint8_t> encodeFooterAndTrailer(const Footer& f, uint64_t offset);
struct Trailer {
  uint64_t footer_offset = 0;
  uint32_t footer_length = 0;
};
bool decodeTrailer(std::span<const uint8_t> bytes, Trailer& t, std::string* why);
// `frame` is the whole footer frame (crc verified by this function).
bool decodeFooter(std::span<const uint8_t> frame, Footer& f, std::string* why);

// "flows-20261126T153712.345Z" for a UNIX ms time.
std::string segmentStem(uint64_t unix_ms);

}  // namespace nc::store::format
