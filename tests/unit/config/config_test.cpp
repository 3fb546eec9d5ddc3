#include "ebb/config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "ebb/websocket/error.hpp"
#include "ebb/websocket/options.hpp"

namespace {

using ebb::config::Config;
using ebb::config::ConfigError;
using ebb::websocket::ServerOptions;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// A .env file in a private temp directory, removed at scope exit.
class EnvFile {
 public:
  explicit EnvFile(const std::string& content) {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("ebb_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
    path_ = (dir_ / ".env").string();
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~EnvFile() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }
  std::string dir() const { return dir_.string(); }

 private:
  fs::path dir_;
  std::string path_;
};

/// Sets a process environment variable for the scope of the test.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }

 private:
  std::string name_;
};

/// Runs `f`, which must throw ConfigError; returns it for inspection.
template <typename F>
std::optional<ConfigError> config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e;
  }
  return std::nullopt;
}

/// Asserts `f` throws ConfigError for `key` whose what() starts with "key: ".
#define EXPECT_CONFIG_ERROR(expected_key, ...)                                            \
  do {                                                                                    \
    const auto error_ = config_error([&] { (void)(__VA_ARGS__); });                       \
    ASSERT_TRUE(error_.has_value()) << "no ConfigError from " #__VA_ARGS__;               \
    EXPECT_EQ(error_->key(), expected_key);                                               \
    EXPECT_EQ(std::string(error_->what()).rfind(std::string(expected_key) + ": ", 0), 0u) \
        << error_->what();                                                                \
  } while (false)

Config one(const std::string& key, const std::string& value) {
  return Config::from_map({{key, value}});
}

// ---- .env parsing -----------------------------------------------------------

TEST(EnvFile, ParsesValuesCommentsExportAndQuotes) {
  EnvFile file(
      "# full-line comment\n"
      "\n"
      "   \t\n"
      "PLAIN=hello\n"
      "export EXPORTED=yes\n"
      "export   SPACED_EXPORT=1\n"
      "TRIMMED =   padded value   \n"
      "TRAILING=value # a comment\n"
      "HASH_IN_VALUE=a#b\n"
      "ONLY_COMMENT= # nothing\n"
      "EMPTY=\n"
      "SINGLE='literal \\n $x # not a comment'\n"
      "DOUBLE=\"line1\\nline2\\ttab \\\"q\\\" back\\\\slash\"\n"
      "DOUBLE_KEEPS_UNKNOWN=\"C:\\dir\"\n"
      "QUOTED_COMMENT=\"v\" # trailing\n"
      "   INDENTED=ok\n"
      "_UNDER_9=x\n"
      "DUP=first\n"
      "DUP=second\n"
      "URL=redis://h:6379/0?a=b\n");
  const Config cfg(file.path());
  EXPECT_EQ(cfg.source(), file.path());
  EXPECT_EQ(cfg.get_string("PLAIN"), "hello");
  EXPECT_EQ(cfg.get_string("EXPORTED"), "yes");
  EXPECT_EQ(cfg.get_string("SPACED_EXPORT"), "1");
  EXPECT_EQ(cfg.get_string("TRIMMED"), "padded value");
  EXPECT_EQ(cfg.get_string("TRAILING"), "value");
  EXPECT_EQ(cfg.get_string("HASH_IN_VALUE"), "a#b");
  EXPECT_EQ(cfg.raw("ONLY_COMMENT"), "");
  EXPECT_TRUE(cfg.has("EMPTY"));
  EXPECT_EQ(cfg.raw("EMPTY"), "");
  EXPECT_EQ(cfg.get_string("EMPTY", "dflt"), "dflt");
  EXPECT_EQ(cfg.get_string("SINGLE"), "literal \\n $x # not a comment");
  EXPECT_EQ(cfg.get_string("DOUBLE"), "line1\nline2\ttab \"q\" back\\slash");
  EXPECT_EQ(cfg.get_string("DOUBLE_KEEPS_UNKNOWN"), "C:\\dir");
  EXPECT_EQ(cfg.get_string("QUOTED_COMMENT"), "v");
  EXPECT_EQ(cfg.get_string("INDENTED"), "ok");
  EXPECT_EQ(cfg.get_string("_UNDER_9"), "x");
  EXPECT_EQ(cfg.get_string("DUP"), "second");
  EXPECT_EQ(cfg.get_string("URL"), "redis://h:6379/0?a=b");
  EXPECT_FALSE(cfg.has("NOT_THERE_AT_ALL_EBB"));
}

TEST(EnvFile, HandlesCrlfAndByteOrderMark) {
  EnvFile file(
      "\xEF\xBB\xBF"
      "FIRST=1\r\nSECOND=\"two\"\r\n# c\r\n");
  const Config cfg(file.path());
  EXPECT_EQ(cfg.get_int("FIRST", 0), 1);
  EXPECT_EQ(cfg.get_string("SECOND"), "two");
}

TEST(EnvFile, MissingFileIsNotAnError) {
  const Config cfg("/nonexistent/ebb/definitely/missing.env");
  EXPECT_EQ(cfg.source(), "");
  EXPECT_EQ(cfg.get_port("EBB_TEST_MISSING_PORT_KEY", 9001), 9001);
}

TEST(EnvFile, DirectoryIsAnError) {
  EnvFile file("A=1\n");
  const auto error = config_error([&] { Config cfg(file.dir()); });
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->key(), file.dir());
}

struct MalformedCase {
  const char* content;
  bool key_known;  // false: the key is the file path
  const char* key;
  int line;
};

class MalformedLine : public testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedLine, NamesFileAndLine) {
  const auto& c = GetParam();
  EnvFile file(c.content);
  const auto error = config_error([&] { Config cfg(file.path()); });
  ASSERT_TRUE(error.has_value()) << c.content;
  const std::string what = error->what();
  EXPECT_EQ(error->key(), c.key_known ? std::string(c.key) : file.path()) << what;
  EXPECT_NE(what.find(file.path()), std::string::npos) << what;
  EXPECT_NE(what.find("line " + std::to_string(c.line)), std::string::npos) << what;
  EXPECT_EQ(what.rfind(error->key() + ": ", 0), 0u) << what;
}

INSTANTIATE_TEST_SUITE_P(
    Config, MalformedLine,
    testing::Values(MalformedCase{"A=1\n# ok\nNO_EQUALS_SIGN\n", true, "NO_EQUALS_SIGN", 3},
                    MalformedCase{"A=1\n1BAD=x\n", false, "", 2},
                    MalformedCase{"=value\n", false, "", 1},
                    MalformedCase{"A=1\nB=2\nBAD-KEY=x\n", true, "BAD", 3},
                    MalformedCase{"\n\nOPEN=\"never closed\n", true, "OPEN", 3},
                    MalformedCase{"OPEN='never closed\n", true, "OPEN", 1},
                    MalformedCase{"A=1\nJUNK=\"v\" trailing\n", true, "JUNK", 2},
                    MalformedCase{"export\n", true, "export", 1}));

// ---- precedence -------------------------------------------------------------

TEST(Precedence, EnvironmentOverridesFileAndSetOverridesBoth) {
  const std::string key = "EBB_CFG_TEST_PRECEDENCE_" + std::to_string(::getpid());
  EnvFile file(key + "=from_file\nEBB_CFG_TEST_FILE_ONLY=file\n");
  {
    const Config cfg(file.path());
    EXPECT_EQ(cfg.get_string(key), "from_file");
  }
  ScopedEnv env(key, "from_env");
  Config cfg(file.path());
  EXPECT_EQ(cfg.get_string(key), "from_env");
  EXPECT_EQ(cfg.get_string("EBB_CFG_TEST_FILE_ONLY"), "file");
  cfg.set(key, "from_set");
  EXPECT_EQ(cfg.get_string(key), "from_set");
}

TEST(Precedence, EnvironmentOnlyConstructorSeesEnvironment) {
  const std::string key = "EBB_CFG_TEST_ENV_ONLY_" + std::to_string(::getpid());
  ScopedEnv env(key, "4242");
  const Config cfg;
  EXPECT_EQ(cfg.get_port(key, 1), 4242);
  EXPECT_EQ(cfg.source(), "");
}

TEST(Precedence, FromMapIgnoresEnvironment) {
  const std::string key = "EBB_CFG_TEST_FROM_MAP_" + std::to_string(::getpid());
  ScopedEnv env(key, "from_env");
  const auto cfg = Config::from_map({{key, "from_map"}});
  EXPECT_EQ(cfg.get_string(key), "from_map");
  EXPECT_FALSE(cfg.has(key + "_OTHER"));
  const auto empty = Config::from_map({});
  EXPECT_FALSE(empty.has(key));
}

// ---- typed getters ----------------------------------------------------------

TEST(GetInt, GoodValues) {
  EXPECT_EQ(one("K", "42").get_int("K", 0), 42);
  EXPECT_EQ(one("K", "  -7 ").get_int("K", 0), -7);
  EXPECT_EQ(one("K", "+5").get_int("K", 0), 5);
  EXPECT_EQ(one("K", "9223372036854775807").get_int("K", 0), INT64_MAX);
  EXPECT_EQ(one("K", "-9223372036854775808").get_int("K", 0), INT64_MIN);
  EXPECT_EQ(one("K", "").get_int("K", 17), 17);
  EXPECT_EQ(one("OTHER", "1").get_int("K", 17), 17);
  EXPECT_EQ(one("K", "10").get_int("K", 0, 10, 10), 10);
}

TEST(GetInt, BadValuesNameTheKey) {
  for (const char* bad : {"80a", "1.5", "0x10", "abc", "--1", "+-1", "1 2", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999999"}) {
    SCOPED_TRACE(bad);
    EXPECT_CONFIG_ERROR("SOME_INT", one("SOME_INT", bad).get_int("SOME_INT", 0));
  }
  EXPECT_CONFIG_ERROR("RANGED", one("RANGED", "11").get_int("RANGED", 0, 1, 10));
  EXPECT_CONFIG_ERROR("RANGED", one("RANGED", "0").get_int("RANGED", 5, 1, 10));
  const auto e = config_error([] { one("RANGED", "11").get_int("RANGED", 0, 1, 10); });
  ASSERT_TRUE(e);
  EXPECT_STREQ(e->what(), "RANGED: expected an integer in 1..10, got \"11\"");
}

TEST(GetPort, GoodAndBad) {
  EXPECT_EQ(one("P", "0").get_port("P", 1), 0);
  EXPECT_EQ(one("P", "65535").get_port("P", 1), 65535);
  EXPECT_EQ(one("P", "8080").get_port("P", 1), 8080);
  for (const char* bad : {"65536", "-1", "80a", "http"}) {
    SCOPED_TRACE(bad);
    EXPECT_CONFIG_ERROR("WEBSOCKET_PORT", one("WEBSOCKET_PORT", bad).get_port("WEBSOCKET_PORT", 1));
  }
  const auto e = config_error([] { one("WEBSOCKET_PORT", "80a").get_port("WEBSOCKET_PORT", 1); });
  ASSERT_TRUE(e);
  EXPECT_STREQ(e->what(), "WEBSOCKET_PORT: expected an integer in 0..65535, got \"80a\"");
}

TEST(GetBool, GoodAndBad) {
  for (const char* t : {"true", "TRUE", "True", "1", "yes", "YES", "on", "On", " true "}) {
    EXPECT_TRUE(one("B", t).get_bool("B", false)) << t;
  }
  for (const char* f : {"false", "FALSE", "0", "no", "No", "off", "OFF"}) {
    EXPECT_FALSE(one("B", f).get_bool("B", true)) << f;
  }
  EXPECT_TRUE(one("B", "").get_bool("B", true));
  for (const char* bad : {"maybe", "2", "tru", "y", "enable"}) {
    SCOPED_TRACE(bad);
    EXPECT_CONFIG_ERROR("FLAG", one("FLAG", bad).get_bool("FLAG", false));
  }
}

TEST(GetDuration, GoodValues) {
  EXPECT_EQ(one("D", "1500ms").get_duration("D", 0ms), 1500ms);
  EXPECT_EQ(one("D", "30s").get_duration("D", 0ms), 30s);
  EXPECT_EQ(one("D", "2m").get_duration("D", 0ms), 2min);
  EXPECT_EQ(one("D", "1h").get_duration("D", 0ms), 1h);
  EXPECT_EQ(one("D", "250").get_duration("D", 0ms), 250ms);
  EXPECT_EQ(one("D", "0").get_duration("D", 5ms), 0ms);
  EXPECT_EQ(one("D", " 5 S ").get_duration("D", 0ms), 5s);
  EXPECT_EQ(one("D", "").get_duration("D", 7ms), 7ms);
}

TEST(GetDuration, BadValuesNameTheKey) {
  for (const char* bad : {"1.5s", "-1s", "-5", "10x", "s", "ms", "1d", "1 s 2",
                          "99999999999999999h", "99999999999999999999"}) {
    SCOPED_TRACE(bad);
    EXPECT_CONFIG_ERROR("TIMEOUT", one("TIMEOUT", bad).get_duration("TIMEOUT", 0ms));
  }
}

TEST(GetSize, GoodValues) {
  EXPECT_EQ(one("S", "512").get_size("S", 0), 512u);
  EXPECT_EQ(one("S", "64k").get_size("S", 0), 64u * 1024);
  EXPECT_EQ(one("S", "64KiB").get_size("S", 0), 64u * 1024);
  EXPECT_EQ(one("S", "64K").get_size("S", 0), 64u * 1024);
  EXPECT_EQ(one("S", "16M").get_size("S", 0), 16u << 20);
  EXPECT_EQ(one("S", "16MiB").get_size("S", 0), 16u << 20);
  EXPECT_EQ(one("S", "1G").get_size("S", 0), 1ull << 30);
  EXPECT_EQ(one("S", "3 GiB").get_size("S", 0), 3ull << 30);
  EXPECT_EQ(one("S", "0").get_size("S", 9), 0u);
  EXPECT_EQ(one("S", "").get_size("S", 9), 9u);
  EXPECT_EQ(one("S", "18446744073709551615").get_size("S", 0), UINT64_MAX);
}

TEST(GetSize, BadValuesNameTheKey) {
  for (const char* bad : {"12Q", "-1", "1.5M", "k", "16 M B", "18446744073709551616",
                          "17179869184G", "99999999999999999999k"}) {
    SCOPED_TRACE(bad);
    EXPECT_CONFIG_ERROR("BUF", one("BUF", bad).get_size("BUF", 0));
  }
}

TEST(GetList, SplitsTrimsAndDropsEmpties) {
  using V = std::vector<std::string>;
  EXPECT_EQ(one("L", " a, b ,,c , ").get_list("L"), (V{"a", "b", "c"}));
  EXPECT_EQ(one("L", "single").get_list("L"), (V{"single"}));
  EXPECT_EQ(one("L", " , ,").get_list("L", V{"d"}), V{});
  EXPECT_EQ(one("L", "").get_list("L", V{"d"}), (V{"d"}));
  EXPECT_EQ(one("OTHER", "x").get_list("L", V{"d"}), (V{"d"}));
}

// ---- ServerOptions ----------------------------------------------------------

TEST(ServerOptionsFromConfig, DefaultsMatchTheHeader) {
  const auto o = ServerOptions::from_config(Config::from_map({}));
  const ServerOptions d;
  EXPECT_EQ(o.host, "0.0.0.0");
  EXPECT_EQ(o.port, 9001);
  EXPECT_EQ(o.io_threads, 1u);
  EXPECT_EQ(o.path, "");
  EXPECT_EQ(o.max_message_size, 16u << 20);
  EXPECT_EQ(o.max_handshake_size, 8192u);
  EXPECT_EQ(o.handshake_timeout, 5000ms);
  EXPECT_EQ(o.idle_timeout, 0ms);
  EXPECT_EQ(o.ping_interval, 30000ms);
  EXPECT_EQ(o.pong_timeout, 10000ms);
  EXPECT_EQ(o.close_wait, 1000ms);
  EXPECT_EQ(o.max_send_queue, d.max_send_queue);
  EXPECT_EQ(o.slow_consumer_close_code, 1008);
  EXPECT_TRUE(o.allowed_origins.empty());
  EXPECT_TRUE(o.subprotocols.empty());
  EXPECT_FALSE(o.deflate.enabled);
  EXPECT_EQ(o.deflate.server_max_window_bits, 15);
  EXPECT_EQ(o.deflate.client_max_window_bits, 15);
  EXPECT_FALSE(o.deflate.server_no_context_takeover);
  EXPECT_FALSE(o.deflate.client_no_context_takeover);
  EXPECT_EQ(o.deflate.level, 6);
  EXPECT_EQ(o.deflate.min_size, 64u);
  EXPECT_FALSE(o.tls.enabled());
  EXPECT_NO_THROW(d.validate());
}

TEST(ServerOptionsFromConfig, ReadsEveryKey) {
  const auto o = ServerOptions::from_config(Config::from_map({
      {"WEBSOCKET_HOST", "127.0.0.1"},
      {"WEBSOCKET_PORT", "0"},
      {"WEBSOCKET_IO_THREADS", "3"},
      {"WEBSOCKET_PATH", "/ws"},
      {"WEBSOCKET_MAX_MESSAGE_SIZE", "1M"},
      {"WEBSOCKET_MAX_HANDSHAKE_SIZE", "4k"},
      {"WEBSOCKET_HANDSHAKE_TIMEOUT_MS", "2s"},
      {"WEBSOCKET_IDLE_TIMEOUT_MS", "60000"},
      {"WEBSOCKET_PING_INTERVAL_MS", "0"},
      {"WEBSOCKET_PONG_TIMEOUT_MS", "0"},
      {"WEBSOCKET_CLOSE_WAIT_MS", "250"},
      {"WEBSOCKET_HALF_CLOSE_DELAY_MS", "200"},
      {"WEBSOCKET_MAX_SEND_QUEUE", "2MiB"},
      {"WEBSOCKET_SLOW_CONSUMER_CLOSE_CODE", "1013"},
      {"WEBSOCKET_ALLOWED_ORIGINS", "https://a.example, https://b.example"},
      {"WEBSOCKET_SUBPROTOCOLS", "chat.v2, chat"},
      {"WEBSOCKET_DEFLATE", "on"},
      {"WEBSOCKET_DEFLATE_SERVER_WINDOW_BITS", "9"},
      {"WEBSOCKET_DEFLATE_CLIENT_WINDOW_BITS", "12"},
      {"WEBSOCKET_DEFLATE_SERVER_NO_CONTEXT_TAKEOVER", "yes"},
      {"WEBSOCKET_DEFLATE_CLIENT_NO_CONTEXT_TAKEOVER", "true"},
      {"WEBSOCKET_DEFLATE_LEVEL", "1"},
      {"WEBSOCKET_DEFLATE_MIN_SIZE", "1k"},
      {"WEBSOCKET_TLS_CERT", "/etc/cert.pem"},
      {"WEBSOCKET_TLS_KEY", "/etc/key.pem"},
  }));
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 0);
  EXPECT_EQ(o.io_threads, 3u);
  EXPECT_EQ(o.path, "/ws");
  EXPECT_EQ(o.max_message_size, 1u << 20);
  EXPECT_EQ(o.max_handshake_size, 4096u);
  EXPECT_EQ(o.handshake_timeout, 2s);
  EXPECT_EQ(o.idle_timeout, 60s);
  EXPECT_EQ(o.ping_interval, 0ms);
  EXPECT_EQ(o.pong_timeout, 0ms);
  EXPECT_EQ(o.close_wait, 250ms);
  EXPECT_EQ(o.half_close_delay, 200ms);
  EXPECT_EQ(o.max_send_queue, 2u << 20);
  EXPECT_EQ(o.slow_consumer_close_code, 1013);
  EXPECT_EQ(o.allowed_origins,
            (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_EQ(o.subprotocols, (std::vector<std::string>{"chat.v2", "chat"}));
  EXPECT_TRUE(o.deflate.enabled);
  EXPECT_EQ(o.deflate.server_max_window_bits, 9);
  EXPECT_EQ(o.deflate.client_max_window_bits, 12);
  EXPECT_TRUE(o.deflate.server_no_context_takeover);
  EXPECT_TRUE(o.deflate.client_no_context_takeover);
  EXPECT_EQ(o.deflate.level, 1);
  EXPECT_EQ(o.deflate.min_size, 1024u);
  EXPECT_TRUE(o.tls.enabled());
}

TEST(ServerOptionsFromConfig, ZeroIoThreadsMeansHardwareThreads) {
  const auto o = ServerOptions::from_config(one("WEBSOCKET_IO_THREADS", "0"));
  const unsigned hw = std::thread::hardware_concurrency();
  EXPECT_EQ(o.io_threads, hw == 0 ? 1u : hw);
}

struct BadOption {
  std::map<std::string, std::string> values;
  const char* key;
};

class ServerOptionsBadValue : public testing::TestWithParam<BadOption> {};

TEST_P(ServerOptionsBadValue, ThrowsConfigErrorNamingTheKey) {
  const auto& c = GetParam();
  EXPECT_CONFIG_ERROR(c.key, ServerOptions::from_config(Config::from_map(c.values)));
}

INSTANTIATE_TEST_SUITE_P(
    Config, ServerOptionsBadValue,
    testing::Values(
        BadOption{{{"WEBSOCKET_PORT", "70000"}}, "WEBSOCKET_PORT"},
        BadOption{{{"WEBSOCKET_IO_THREADS", "-1"}}, "WEBSOCKET_IO_THREADS"},
        BadOption{{{"WEBSOCKET_IO_THREADS", "5000"}}, "WEBSOCKET_IO_THREADS"},
        BadOption{{{"WEBSOCKET_PATH", "chat"}}, "WEBSOCKET_PATH"},
        BadOption{{{"WEBSOCKET_MAX_MESSAGE_SIZE", "lots"}}, "WEBSOCKET_MAX_MESSAGE_SIZE"},
        BadOption{{{"WEBSOCKET_MAX_MESSAGE_SIZE", "0"}}, "WEBSOCKET_MAX_MESSAGE_SIZE"},
        BadOption{{{"WEBSOCKET_MAX_HANDSHAKE_SIZE", "0"}}, "WEBSOCKET_MAX_HANDSHAKE_SIZE"},
        BadOption{{{"WEBSOCKET_MAX_SEND_QUEUE", "0"}}, "WEBSOCKET_MAX_SEND_QUEUE"},
        BadOption{{{"WEBSOCKET_HANDSHAKE_TIMEOUT_MS", "0"}}, "WEBSOCKET_HANDSHAKE_TIMEOUT_MS"},
        BadOption{{{"WEBSOCKET_IDLE_TIMEOUT_MS", "soon"}}, "WEBSOCKET_IDLE_TIMEOUT_MS"},
        BadOption{{{"WEBSOCKET_PING_INTERVAL_MS", "-1"}}, "WEBSOCKET_PING_INTERVAL_MS"},
        BadOption{{{"WEBSOCKET_PONG_TIMEOUT_MS", "0"}}, "WEBSOCKET_PONG_TIMEOUT_MS"},
        BadOption{{{"WEBSOCKET_CLOSE_WAIT_MS", "1.5s"}}, "WEBSOCKET_CLOSE_WAIT_MS"},
        BadOption{{{"WEBSOCKET_HALF_CLOSE_DELAY_MS", "-5"}}, "WEBSOCKET_HALF_CLOSE_DELAY_MS"},
        BadOption{{{"WEBSOCKET_SLOW_CONSUMER_CLOSE_CODE", "1000"}},
                  "WEBSOCKET_SLOW_CONSUMER_CLOSE_CODE"},
        BadOption{{{"WEBSOCKET_SUBPROTOCOLS", "chat, bad proto"}}, "WEBSOCKET_SUBPROTOCOLS"},
        BadOption{{{"WEBSOCKET_DEFLATE", "sometimes"}}, "WEBSOCKET_DEFLATE"},
        BadOption{{{"WEBSOCKET_DEFLATE_SERVER_WINDOW_BITS", "8"}},
                  "WEBSOCKET_DEFLATE_SERVER_WINDOW_BITS"},
        BadOption{{{"WEBSOCKET_DEFLATE_CLIENT_WINDOW_BITS", "16"}},
                  "WEBSOCKET_DEFLATE_CLIENT_WINDOW_BITS"},
        BadOption{{{"WEBSOCKET_DEFLATE_SERVER_NO_CONTEXT_TAKEOVER", "2"}},
                  "WEBSOCKET_DEFLATE_SERVER_NO_CONTEXT_TAKEOVER"},
        BadOption{{{"WEBSOCKET_DEFLATE_LEVEL", "0"}}, "WEBSOCKET_DEFLATE_LEVEL"},
        BadOption{{{"WEBSOCKET_DEFLATE_LEVEL", "10"}}, "WEBSOCKET_DEFLATE_LEVEL"},
        BadOption{{{"WEBSOCKET_DEFLATE_MIN_SIZE", "-1"}}, "WEBSOCKET_DEFLATE_MIN_SIZE"},
        BadOption{{{"WEBSOCKET_TLS_CERT", "/c.pem"}}, "WEBSOCKET_TLS_KEY"},
        BadOption{{{"WEBSOCKET_TLS_KEY", "/k.pem"}}, "WEBSOCKET_TLS_CERT"}));

/// validate() on a default-constructed struct with one field broken.
template <typename Mutate>
std::string validate_message(Mutate mutate) {
  ServerOptions o;
  mutate(o);
  try {
    o.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

#define EXPECT_INVALID_FIELD(field, ...)                                                      \
  EXPECT_EQ(validate_message([](ServerOptions& o) { __VA_ARGS__; }).rfind(field ": ", 0), 0u) \
      << validate_message([](ServerOptions& o) { __VA_ARGS__; })

TEST(ServerOptionsValidate, NamesTheField) {
  EXPECT_INVALID_FIELD("host", o.host = "");
  EXPECT_INVALID_FIELD("io_threads", o.io_threads = 100000);
  EXPECT_INVALID_FIELD("path", o.path = "ws");
  EXPECT_INVALID_FIELD("max_message_size", o.max_message_size = 0);
  EXPECT_INVALID_FIELD("max_handshake_size", o.max_handshake_size = 0);
  EXPECT_INVALID_FIELD("max_send_queue", o.max_send_queue = 0);
  EXPECT_INVALID_FIELD("handshake_timeout", o.handshake_timeout = 0ms);
  EXPECT_INVALID_FIELD("idle_timeout", o.idle_timeout = -1ms);
  EXPECT_INVALID_FIELD("ping_interval", o.ping_interval = -1ms);
  EXPECT_INVALID_FIELD("pong_timeout", o.pong_timeout = 0ms);
  EXPECT_INVALID_FIELD("close_wait", o.close_wait = -5ms);
  EXPECT_INVALID_FIELD("slow_consumer_close_code", o.slow_consumer_close_code = 1001);
  EXPECT_INVALID_FIELD("deflate.server_max_window_bits", o.deflate.server_max_window_bits = 8);
  EXPECT_INVALID_FIELD("deflate.client_max_window_bits", o.deflate.client_max_window_bits = 16);
  EXPECT_INVALID_FIELD("deflate.level", o.deflate.level = 0);
  EXPECT_INVALID_FIELD("deflate.level", o.deflate.level = 10);
  EXPECT_INVALID_FIELD("tls.key_file", o.tls.cert_file = "c.pem");
  EXPECT_INVALID_FIELD("tls.cert_file", o.tls.key_file = "k.pem");
  EXPECT_INVALID_FIELD("subprotocols", o.subprotocols = {"a b"});
  EXPECT_INVALID_FIELD("allowed_origins", o.allowed_origins = {""});
}

TEST(ServerOptionsValidate, AcceptsEdgeValues) {
  ServerOptions o;
  o.io_threads = 0;
  o.ping_interval = 0ms;
  o.pong_timeout = 0ms;
  o.close_wait = 0ms;
  o.slow_consumer_close_code = 1013;
  o.deflate.server_max_window_bits = 9;
  o.deflate.client_max_window_bits = 15;
  o.deflate.level = 9;
  o.tls.cert_file = "c.pem";
  o.tls.key_file = "k.pem";
  o.subprotocols = {"chat.v1", "x-custom_proto~1"};
  EXPECT_NO_THROW(o.validate());
}

// ---- error category ---------------------------------------------------------

TEST(WebSocketErrorCategory, NameAndDistinctMessages) {
  using ebb::websocket::error;
  EXPECT_STREQ(ebb::websocket::websocket_category().name(), "ebb.websocket");
  std::set<std::string> messages;
  for (int v = static_cast<int>(error::protocol_error);
       v <= static_cast<int>(error::forced_shutdown); ++v) {
    const std::error_code ec = static_cast<error>(v);
    EXPECT_EQ(&ec.category(), &ebb::websocket::websocket_category());
    EXPECT_FALSE(ec.message().empty());
    EXPECT_EQ(ec.message().find("unknown"), std::string::npos) << v;
    messages.insert(ec.message());
  }
  EXPECT_EQ(messages.size(), static_cast<std::size_t>(error::forced_shutdown));
  EXPECT_NE(ebb::websocket::websocket_category().message(999).find("unknown"), std::string::npos);
}

TEST(WebSocketErrorCategory, PortableConditions) {
  using ebb::websocket::error;
  const std::error_code pong = error::pong_timeout;
  EXPECT_EQ(pong, std::errc::timed_out);
  EXPECT_EQ(std::error_code(error::message_too_big), std::errc::message_size);
  EXPECT_EQ(std::error_code(error::server_stopped), std::errc::operation_canceled);
  EXPECT_NE(std::error_code(error::protocol_error), std::errc::timed_out);
  EXPECT_EQ(std::error_code(error::protocol_error), error::protocol_error);
  EXPECT_TRUE(static_cast<bool>(std::error_code(error::protocol_error)));
}

}  // namespace
