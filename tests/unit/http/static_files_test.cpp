// Static files (content types, path mapping, conditional GETs) and HTTP dates,
// on real temporary directories.
#include "http/static_files.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "ebb/http/request.hpp"
#include "ebb/http/response.hpp"
#include "http/http_date.hpp"
#include "http/request_builder.hpp"

namespace fs = std::filesystem;
using ebb::http::detail::content_type_for;
using ebb::http::detail::format_http_date;
using ebb::http::detail::if_none_match_matches;
using ebb::http::detail::parse_http_date;
using ebb::http::detail::resolve_static;
using ebb::http::detail::serve_file;

namespace {

// The RFC 9110 example date, Sun, 06 Nov 1994 08:49:37 GMT.
constexpr std::time_t rfc_example = 784111777;

void write_file(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << content;
  ASSERT_TRUE(f.good()) << p;
}

void set_mtime(const fs::path& p, std::time_t t, long nsec = 0) {
  const timespec times[2] = {{t, nsec}, {t, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0) << p;
}

// A fresh directory per test: <tmp>/www is the root; <tmp>/outside and
// <tmp>/www2 are beside it (www2 shares www's name as a string prefix).
class StaticFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ebb-static-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    root_ = tmp_ / "www";
    write_file(root_ / "index.html", "<h1>home</h1>");
    write_file(root_ / "css/app.css", "body{}");
    write_file(root_ / "sub/index.html", "<h1>sub</h1>");
    write_file(root_ / "a/b.txt", "b");
    fs::create_directories(root_ / "emptydir");
    write_file(tmp_ / "outside/secret.txt", "secret");
    write_file(tmp_ / "www2/file.txt", "neighbour");
    fs::create_symlink("../outside/secret.txt", root_ / "link_out");
    fs::create_directory_symlink("../outside", root_ / "dirlink_out");
    fs::create_symlink("../www2/file.txt", root_ / "prefix_out");
    fs::create_symlink("css/app.css", root_ / "link_in.css");
    fs::create_directory_symlink("css", root_ / "dirlink_in");
    fs::create_directories(root_ / "idx_out");
    fs::create_symlink("../../outside/secret.txt", root_ / "idx_out/index.html");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }

  fs::path canon(const fs::path& p) const { return fs::canonical(p); }

  fs::path tmp_;
  fs::path root_;
};

// ---- content types ----

TEST(ContentType, KnownExtensions) {
  EXPECT_EQ(content_type_for("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("a.htm"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("app.css"), "text/css; charset=utf-8");
  EXPECT_EQ(content_type_for("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("mod.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(content_type_for("d.json"), "application/json");
  EXPECT_EQ(content_type_for("app.js.map"), "application/json");
  EXPECT_EQ(content_type_for("r.txt"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("t.csv"), "text/csv; charset=utf-8");
  EXPECT_EQ(content_type_for("README.md"), "text/markdown; charset=utf-8");
  EXPECT_EQ(content_type_for("x.xml"), "application/xml");
  EXPECT_EQ(content_type_for("logo.svg"), "image/svg+xml");
  EXPECT_EQ(content_type_for("a.png"), "image/png");
  EXPECT_EQ(content_type_for("a.jpg"), "image/jpeg");
  EXPECT_EQ(content_type_for("a.jpeg"), "image/jpeg");
  EXPECT_EQ(content_type_for("a.gif"), "image/gif");
  EXPECT_EQ(content_type_for("a.webp"), "image/webp");
  EXPECT_EQ(content_type_for("favicon.ico"), "image/x-icon");
  EXPECT_EQ(content_type_for("m.wasm"), "application/wasm");
  EXPECT_EQ(content_type_for("f.woff"), "font/woff");
  EXPECT_EQ(content_type_for("f.woff2"), "font/woff2");
  EXPECT_EQ(content_type_for("f.ttf"), "font/ttf");
  EXPECT_EQ(content_type_for("f.otf"), "font/otf");
  EXPECT_EQ(content_type_for("doc.pdf"), "application/pdf");
  EXPECT_EQ(content_type_for("v.mp4"), "video/mp4");
  EXPECT_EQ(content_type_for("v.webm"), "video/webm");
  EXPECT_EQ(content_type_for("s.mp3"), "audio/mpeg");
  EXPECT_EQ(content_type_for("s.wav"), "audio/wav");
  EXPECT_EQ(content_type_for("a.zip"), "application/zip");
  EXPECT_EQ(content_type_for("a.tar.gz"), "application/gzip");
}

TEST(ContentType, CaseInsensitiveAndDirectories) {
  EXPECT_EQ(content_type_for("A.PNG"), "image/png");
  EXPECT_EQ(content_type_for("Index.HtMl"), "text/html; charset=utf-8");
  EXPECT_EQ(content_type_for("/srv/www.v2/app.css"), "text/css; charset=utf-8");
}

TEST(ContentType, UnknownIsOctetStream) {
  EXPECT_EQ(content_type_for("data.bin"), "application/octet-stream");
  EXPECT_EQ(content_type_for("Makefile"), "application/octet-stream");
  EXPECT_EQ(content_type_for(".htaccess"), "application/octet-stream");
  EXPECT_EQ(content_type_for("trailing."), "application/octet-stream");
  EXPECT_EQ(content_type_for("x.htmlx"), "application/octet-stream");
  EXPECT_EQ(content_type_for("x.averylongextension"), "application/octet-stream");
  EXPECT_EQ(content_type_for("/srv/www.css/file"), "application/octet-stream");
}

// ---- resolve_static ----

TEST_F(StaticFiles, MapsPlainFiles) {
  EXPECT_EQ(resolve_static(root_, "css/app.css"), canon(root_ / "css/app.css"));
  EXPECT_EQ(resolve_static(root_, "index.html"), canon(root_ / "index.html"));
  // Leading, doubled and "." segments are harmless.
  EXPECT_EQ(resolve_static(root_, "/css/app.css"), canon(root_ / "css/app.css"));
  EXPECT_EQ(resolve_static(root_, "css//app.css"), canon(root_ / "css/app.css"));
  EXPECT_EQ(resolve_static(root_, "./css/./app.css"), canon(root_ / "css/app.css"));
  // A root given with a trailing slash or through a relative path works too.
  EXPECT_EQ(resolve_static(root_.string() + "/", "a/b.txt"), canon(root_ / "a/b.txt"));
}

TEST_F(StaticFiles, DirectoryMapsToIndexHtml) {
  EXPECT_EQ(resolve_static(root_, ""), canon(root_ / "index.html"));
  EXPECT_EQ(resolve_static(root_, "/"), canon(root_ / "index.html"));
  EXPECT_EQ(resolve_static(root_, "sub"), canon(root_ / "sub/index.html"));
  EXPECT_EQ(resolve_static(root_, "sub/"), canon(root_ / "sub/index.html"));
  EXPECT_EQ(resolve_static(root_, "emptydir"), std::nullopt);
}

TEST_F(StaticFiles, MissingIsNullopt) {
  EXPECT_EQ(resolve_static(root_, "nope.txt"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "css/nope.css"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "index.html/x"), std::nullopt);
  EXPECT_EQ(resolve_static(tmp_ / "no-such-root", "index.html"), std::nullopt);
}

TEST_F(StaticFiles, RejectsDotDotSegments) {
  // Each of these would name an existing file if ".." were followed.
  EXPECT_EQ(resolve_static(root_, "../outside/secret.txt"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "css/../../outside/secret.txt"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "a/../../outside/secret.txt"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "/../www2/file.txt"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, ".."), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "../"), std::nullopt);
  // Even a ".." that would stay inside the root is refused.
  EXPECT_EQ(resolve_static(root_, "css/../index.html"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "css/.."), std::nullopt);
  // "..." and "..x" are ordinary names.
  write_file(root_ / "...", "dots");
  write_file(root_ / "..x", "dotx");
  EXPECT_EQ(resolve_static(root_, "..."), canon(root_ / "..."));
  EXPECT_EQ(resolve_static(root_, "..x"), canon(root_ / "..x"));
}

TEST_F(StaticFiles, AbsolutePathStaysUnderRoot) {
  // "/etc/passwd" names root/etc/passwd (missing), never the system file.
  EXPECT_EQ(resolve_static(root_, "/etc/passwd"), std::nullopt);
  const std::string abs = (tmp_ / "outside/secret.txt").string();
  EXPECT_EQ(resolve_static(root_, abs), std::nullopt);
  write_file(root_ / "etc/passwd", "mine");
  EXPECT_EQ(resolve_static(root_, "/etc/passwd"), canon(root_ / "etc/passwd"));
}

TEST_F(StaticFiles, RejectsNulAndBackslash) {
  EXPECT_EQ(resolve_static(root_, std::string_view("index.html\0.png", 15)), std::nullopt);
  EXPECT_EQ(resolve_static(root_, std::string_view("\0", 1)), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "css\\app.css"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "..\\outside\\secret.txt"), std::nullopt);
  // Control: the same names without the bad byte exist.
  EXPECT_NE(resolve_static(root_, "index.html"), std::nullopt);
}

TEST_F(StaticFiles, SymlinkLeadingOutsideIsRefused) {
  EXPECT_EQ(resolve_static(root_, "link_out"), std::nullopt);
  EXPECT_EQ(resolve_static(root_, "dirlink_out/secret.txt"), std::nullopt);
  // www2 starts with "www" as a string; it is still outside.
  EXPECT_EQ(resolve_static(root_, "prefix_out"), std::nullopt);
  // A directory whose index.html leads out.
  EXPECT_EQ(resolve_static(root_, "idx_out"), std::nullopt);
}

TEST_F(StaticFiles, SymlinkInsideIsServed) {
  EXPECT_EQ(resolve_static(root_, "link_in.css"), canon(root_ / "css/app.css"));
  EXPECT_EQ(resolve_static(root_, "dirlink_in/app.css"), canon(root_ / "css/app.css"));
}

TEST_F(StaticFiles, RootItselfMayBeASymlink) {
  fs::create_directory_symlink("www", tmp_ / "www-link");
  EXPECT_EQ(resolve_static(tmp_ / "www-link", "css/app.css"), canon(root_ / "css/app.css"));
  EXPECT_EQ(resolve_static(tmp_ / "www-link", "link_out"), std::nullopt);
}

TEST_F(StaticFiles, NonRegularFilesAreRefused) {
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
  EXPECT_EQ(resolve_static(root_, "fifo"), std::nullopt);
}

// ---- serve_file ----

class ServeFile : public StaticFiles {
 protected:
  void SetUp() override {
    StaticFiles::SetUp();
    file_ = root_ / "css/app.css";
    set_mtime(file_, rfc_example);
  }

  // Serves `file` to a fresh request with `method` and `headers`.
  ebb::Response serve(
      const fs::path& file, std::string_view method = "GET",
      std::initializer_list<std::pair<std::string_view, std::string_view>> headers = {}) {
    ebb::Request req;
    ebb::http::detail::RequestBuilder b{req};
    b.set_method(method);
    for (const auto& [n, v] : headers) b.add_header(n, v);
    ebb::Response res;
    serve_file(file, req, res);
    return res;
  }
  std::string etag() { return std::string(serve(file_).header("ETag")); }

  fs::path file_;
};

TEST_F(ServeFile, OkWithBodyTypeAndValidators) {
  const ebb::Response res = serve(file_);
  EXPECT_EQ(res.status(), 200);
  EXPECT_EQ(res.body(), "body{}");
  EXPECT_EQ(res.header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(res.header("Last-Modified"), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(res.header("Cache-Control"), "no-cache");
  // Strong, quoted, "<size hex>-<mtime ns hex>": size 6, mtime 784111777 s.
  EXPECT_EQ(res.header("ETag"), "\"6-ae1b981bc490a00\"");
}

TEST_F(ServeFile, EmptyAndBinaryFiles) {
  write_file(root_ / "empty.txt", "");
  const ebb::Response empty = serve(root_ / "empty.txt");
  EXPECT_EQ(empty.status(), 200);
  EXPECT_EQ(empty.body(), "");
  const std::string bin("\0\x01\xff\r\n", 5);
  write_file(root_ / "b.bin", bin);
  const ebb::Response res = serve(root_ / "b.bin");
  EXPECT_EQ(res.body(), bin);
  EXPECT_EQ(res.header("Content-Type"), "application/octet-stream");
}

TEST_F(ServeFile, EtagStableAndChangesWithTheFile) {
  const std::string first = etag();
  EXPECT_EQ(etag(), first);
  // Same size, new mtime (even within the same second).
  write_file(file_, "BODY{}");
  set_mtime(file_, rfc_example, 5);
  const std::string second = etag();
  EXPECT_NE(second, first);
  // New size, same mtime.
  write_file(file_, "body{color:red}");
  set_mtime(file_, rfc_example, 5);
  EXPECT_NE(etag(), second);
  EXPECT_NE(etag(), first);
}

TEST_F(ServeFile, IfNoneMatchSingle) {
  const std::string tag = etag();
  const ebb::Response res = serve(file_, "GET", {{"If-None-Match", tag}});
  EXPECT_EQ(res.status(), 304);
  EXPECT_EQ(res.body(), "");
  EXPECT_EQ(res.header("ETag"), tag);
  EXPECT_EQ(res.header("Last-Modified"), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(res.header("Cache-Control"), "no-cache");
  // Header names are case-insensitive; HEAD behaves like GET.
  EXPECT_EQ(serve(file_, "HEAD", {{"if-none-match", tag}}).status(), 304);
}

TEST_F(ServeFile, IfNoneMatchListStarAndWeak) {
  const std::string tag = etag();
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", "\"a\", " + tag + " , \"b\""}}).status(), 304);
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", "\"a\",\"b\""}}).status(), 200);
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", "*"}}).status(), 304);
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", "W/" + tag}}).status(), 304);
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", "W/\"x\", W/" + tag}}).status(), 304);
  // Split over two header lines.
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", "\"a\""}, {"If-None-Match", tag}}).status(),
            304);
}

TEST_F(ServeFile, IfNoneMatchMismatchOrStale) {
  const std::string tag = etag();
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", "\"other\""}}).status(), 200);
  // Without quotes it is no entity tag.
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", tag.substr(1, tag.size() - 2)}}).status(), 200);
  write_file(file_, "changed!");
  EXPECT_EQ(serve(file_, "GET", {{"If-None-Match", tag}}).status(), 200);
}

TEST_F(ServeFile, IfNoneMatchWinsOverIfModifiedSince) {
  // A non-matching If-None-Match means 200, whatever If-Modified-Since says.
  const ebb::Response res = serve(
      file_, "GET",
      {{"If-None-Match", "\"other\""}, {"If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"}});
  EXPECT_EQ(res.status(), 200);
  EXPECT_EQ(res.body(), "body{}");
}

TEST_F(ServeFile, IfNoneMatchOnOtherMethodsIs412) {
  EXPECT_EQ(serve(file_, "POST", {{"If-None-Match", etag()}}).status(), 412);
  EXPECT_EQ(serve(file_, "POST", {{"If-None-Match", "\"x\""}}).status(), 200);
}

TEST_F(ServeFile, IfModifiedSince) {
  const auto ims = [&](std::string_view date, std::string_view method = "GET") {
    return serve(file_, method, {{"If-Modified-Since", date}}).status();
  };
  EXPECT_EQ(ims("Sun, 06 Nov 1994 08:49:37 GMT"), 304);  // equal
  EXPECT_EQ(ims("Sun, 06 Nov 1994 08:49:38 GMT"), 304);  // later
  EXPECT_EQ(ims("Sunday, 06-Nov-94 08:49:37 GMT"), 304);
  EXPECT_EQ(ims("Sun Nov  6 08:49:37 1994"), 304);
  EXPECT_EQ(ims("Sun, 06 Nov 1994 08:49:36 GMT"), 200);  // earlier
  EXPECT_EQ(ims("yesterday"), 200);                      // invalid: ignored
  EXPECT_EQ(ims("Sun, 06 Nov 1994 08:49:37 GMT", "POST"), 200);
  const ebb::Response res =
      serve(file_, "GET", {{"If-Modified-Since", "Mon, 07 Nov 1994 00:00:00 GMT"}});
  EXPECT_EQ(res.status(), 304);
  EXPECT_EQ(res.body(), "");
  EXPECT_FALSE(res.header("ETag").empty());
}

TEST_F(ServeFile, IfModifiedSinceUsesSecondsPrecision) {
  set_mtime(file_, rfc_example, 999999999);  // .999 s after the date
  EXPECT_EQ(serve(file_, "GET", {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}).status(),
            304);
}

TEST_F(ServeFile, MissingDirectoryAndFifoAre404) {
  EXPECT_EQ(serve(root_ / "nope.txt").status(), 404);
  EXPECT_EQ(serve(root_ / "css").status(), 404);
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
  const ebb::Response res = serve(root_ / "fifo");  // must not block on open
  EXPECT_EQ(res.status(), 404);
  EXPECT_EQ(res.body(), "Not Found");
  EXPECT_TRUE(res.header("ETag").empty());
}

TEST_F(ServeFile, UnreadableIs404) {
  fs::permissions(file_, fs::perms::none);
  if (::geteuid() != 0) {
    EXPECT_EQ(serve(file_).status(), 404);
    return;
  }
  // root reads mode 000 files: drop the effective uid to "nobody" for the
  // call (the saved uid lets us take it back), with the path traversable.
  for (const fs::path& d : {tmp_, root_, root_ / "css"}) {
    fs::permissions(d, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  }
  ASSERT_EQ(::seteuid(65534), 0);
  const ebb::Response res = serve(file_);
  ASSERT_EQ(::seteuid(0), 0);
  EXPECT_EQ(res.status(), 404);
  fs::permissions(file_, fs::perms::owner_read);
  EXPECT_EQ(serve(file_).status(), 200);  // control: the same file, readable
}

TEST_F(ServeFile, TooLargeIs500) {
  const fs::path big = root_ / "big.bin";
  write_file(big, "");
  fs::resize_file(big, ebb::http::detail::max_static_file_size + 1);  // sparse
  const ebb::Response res = serve(big);
  EXPECT_EQ(res.status(), 500);
  EXPECT_EQ(res.body(), "file too large");
  fs::resize_file(big, 1024);
  EXPECT_EQ(serve(big).status(), 200);
}

// ---- If-None-Match parsing on its own ----

TEST(IfNoneMatch, Grammar) {
  EXPECT_TRUE(if_none_match_matches("\"a\"", "\"a\""));
  EXPECT_TRUE(if_none_match_matches("\t\"x\" ,\t\"a\"", "\"a\""));
  EXPECT_TRUE(if_none_match_matches("W/\"a\"", "\"a\""));
  EXPECT_TRUE(if_none_match_matches("\"a\"", "W/\"a\""));
  EXPECT_TRUE(if_none_match_matches(",,\"a\"", "\"a\""));
  EXPECT_FALSE(if_none_match_matches("", "\"a\""));
  EXPECT_FALSE(if_none_match_matches("\"ab\"", "\"a\""));
  EXPECT_FALSE(if_none_match_matches("\"a", "\"a\""));
  EXPECT_FALSE(if_none_match_matches("w/\"a\"", "\"a\""));
  // Garbage before a member stops the parse.
  EXPECT_FALSE(if_none_match_matches("\"x\" junk, \"a\"", "\"a\""));
}

// ---- HTTP dates ----

TEST(HttpDate, FormatsImfFixdate) {
  EXPECT_EQ(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(rfc_example), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(format_http_date(4133980799), "Fri, 31 Dec 2100 23:59:59 GMT");
  EXPECT_EQ(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
}

TEST(HttpDate, ClampsOutOfRangeYears) {
  EXPECT_EQ(format_http_date(std::numeric_limits<std::time_t>::max()).substr(12, 4), "9999");
  EXPECT_EQ(format_http_date(std::numeric_limits<std::time_t>::min()).substr(12, 4), "0000");
}

TEST(HttpDate, MatchesGmtimeAcrossTheRange) {
  // Independent oracle: the C library's gmtime_r + strftime (C locale).
  for (std::time_t t = -86400LL * 365 * 20; t < 86400LL * 365 * 130; t += 86400 * 37 + 3671) {
    std::tm tm{};
    ASSERT_NE(::gmtime_r(&t, &tm), nullptr);
    char want[64];
    ASSERT_GT(std::strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm), 0u);
    ASSERT_EQ(format_http_date(t), want) << t;
    ASSERT_EQ(parse_http_date(want), t) << want;
  }
}

TEST(HttpDate, ParsesTheThreeForms) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), rfc_example);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), rfc_example);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), rfc_example);
  EXPECT_EQ(parse_http_date("Sun Nov 16 08:49:37 1994"), rfc_example + 10 * 86400);
  EXPECT_EQ(parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT\t"), rfc_example);
}

TEST(HttpDate, Rfc850TwoDigitYears) {
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT"), 0);
  EXPECT_EQ(parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT"), 946684800);
  EXPECT_EQ(parse_http_date("Tuesday, 31-Dec-69 00:00:00 GMT"), 3155673600);
}

TEST(HttpDate, RejectsMalformed) {
  for (const char* bad : {
           "",
           "   ",
           "Sun, 06 Nov 1994 08:49:37 UTC",
           "Sun, 06 Nov 1994 08:49:37 GMT junk",
           "Sun, 06 Nov 1994 08:49:37",
           "Sun, 6 Nov 1994 08:49:37 GMT",
           "Sun, 06 nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 94 08:49:37 GMT",
           "Sun, 31 Feb 1994 08:49:37 GMT",
           "Sun, 00 Nov 1994 08:49:37 GMT",
           "Sun, 06 Nov 1994 24:00:00 GMT",
           "Sun, 06 Nov 1994 08:60:00 GMT",
           "Sun, 06 Nov 1994 08:49:61 GMT",
           "Sun, 06 Nov 1994 8:49:37 GMT",
           "Xyz, 06 Nov 1994 08:49:37 GMT",
           "sun, 06 Nov 1994 08:49:37 GMT",
           "Sun,06 Nov 1994 08:49:37 GMT",
           "Sunday, 06 Nov 1994 08:49:37 GMT",
           "Sun, 06-Nov-94 08:49:37 GMT",
           "Sun Nov 6 08:49:37 1994",
           "Sun Nov  6 08:49:37 1994 GMT",
           "1994-11-06T08:49:37Z",
           "784111777",
       }) {
    EXPECT_EQ(parse_http_date(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(HttpDate, RoundTripsEdgeDates) {
  for (std::time_t t : {std::time_t{0}, std::time_t{59}, std::time_t{951868799},
                        std::time_t{253402300799}, std::time_t{-62167219200}}) {
    EXPECT_EQ(parse_http_date(format_http_date(t)), t) << t;
  }
}

}  // namespace
