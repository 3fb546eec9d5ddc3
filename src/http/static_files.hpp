#pragma once
// Static files for App::static_files and Response::file: content types, safe
// mapping of URL paths to files, conditional GETs (ETag, Last-Modified, 304).
//
// Everything here is synchronous and reads whole files into the response
// body, on the calling (I/O) thread: meant for the modest assets of an
// application (pages, scripts, styles, icons), not for a CDN. Hence the cap
// below.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "ebb/http/request.hpp"
#include "ebb/http/response.hpp"

namespace ebb::http::detail {

/// Files larger than this are answered 500 "file too large" instead of being
/// read into memory (the body is one std::string; there is no streaming body).
inline constexpr std::uintmax_t max_static_file_size = 64u * 1024 * 1024;

/// MIME type by the (lower-cased) extension; text types carry
/// "; charset=utf-8". Unknown or missing extension: application/octet-stream.
/// The view refers to static storage.
std::string_view content_type_for(const std::filesystem::path& p);

/// Maps a URL path remainder, already percent-decoded ("css/app.css", "",
/// "/index.html"), to a regular file under `root`. Leading, doubled and "."
/// segments are ignored, so "/etc/passwd" means root/etc/passwd. nullopt for:
/// a NUL byte, a backslash, any ".." segment, a path that does not exist or
/// is not a regular file (after mapping a directory to its index.html), and
/// a path whose canonical form (symlinks resolved) is not inside
/// canonical(root) — a symlink inside root that points inside root is fine.
/// Returns the canonical path. Touches the filesystem (stat, readlink).
/// Not proof against a concurrent attacker who can swap files under `root`
/// between this check and the read.
std::optional<std::filesystem::path> resolve_static(const std::filesystem::path& root,
                                                    std::string_view relative);

/// Fills `res` from the regular file at `path` (status, headers, body; other
/// headers already in `res` stay):
///  - 200, the whole file, Content-Type by extension, ETag (strong:
///    "<size hex>-<mtime ns hex>"), Last-Modified, Cache-Control: no-cache;
///  - 304 with no body and the same ETag / Last-Modified / Cache-Control when
///    If-None-Match matches (a list, "*", W/ tags: weak comparison, RFC 9110
///    §13.1.2), or, only when there is no If-None-Match, when
///    If-Modified-Since is a valid date >= the file's mtime (in seconds).
///    If-Modified-Since is ignored for methods other than GET and HEAD; for
///    them a matching If-None-Match answers 412;
///  - 404 "Not Found" when the file is missing, not a regular file or cannot
///    be opened;
///  - 500 "file too large" above max_static_file_size, or on a read error.
/// The file is opened once and its size and mtime come from that descriptor,
/// so the validators always describe the bytes sent.
void serve_file(const std::filesystem::path& path, const ebb::Request& req, ebb::Response& res);

/// True when the If-None-Match value `field` (a comma-separated list of
/// entity tags, or "*") matches `etag` under weak comparison. A malformed
/// list matches nothing from the malformed member on.
bool if_none_match_matches(std::string_view field, std::string_view etag) noexcept;

}  // namespace ebb::http::detail
