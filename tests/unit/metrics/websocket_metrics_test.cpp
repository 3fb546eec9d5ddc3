#include "ebb/metrics/websocket_metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace ebb::websocket {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kFamilies{
    "ebb_websocket_connections_active",
    "ebb_websocket_connections_total",
    "ebb_websocket_handshakes_failed_total",
    "ebb_websocket_messages_received_total",
    "ebb_websocket_messages_sent_total",
    "ebb_websocket_received_bytes_total",
    "ebb_websocket_sent_bytes_total",
    "ebb_websocket_closes_total",
    "ebb_errors_total",
    "ebb_websocket_slow_consumer_closes_total",
    "ebb_longpoll_sessions_active",
    "ebb_longpoll_sessions_opened_total",
    "ebb_longpoll_messages_buffered_total",
    "ebb_longpoll_messages_dropped_total",
    "ebb_rooms",
    "ebb_lifecycle_state",
    "ebb_drain_duration_seconds",
    "ebb_drain_sessions_forced_total",
    "ebb_drain_sessions_closed_cleanly_total",
    "ebb_store_write_duration_seconds",
    "ebb_http_requests_total",
    "ebb_http_request_duration_seconds",
    "ebb_http_requests_in_flight",
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Sets every metric to something nonzero and uses every label value kind.
void populate(WebSocketMetrics& m) {
  m.connections_active.set(3);
  m.connections_total.inc(10);
  m.count_handshake_failure(400);
  m.count_handshake_failure(503);
  m.count_handshake_failure(42);  // other
  m.count_message_received(WebSocketMetrics::MessageKind::text, 100);
  m.count_message_received(WebSocketMetrics::MessageKind::binary, 7);
  m.count_message_sent(WebSocketMetrics::MessageKind::text, 5);
  m.count_message_sent(WebSocketMetrics::MessageKind::binary, 9);
  for (int code : {1000, 1001, 1006, 1009, 4999, 999, 5000}) m.count_close(code);
  for (std::size_t k = 0; k < WebSocketMetrics::error_kinds.size(); ++k) {
    m.count_error(static_cast<WebSocketMetrics::ErrorKind>(k));
  }
  m.slow_consumer_closes.inc();
  m.longpoll_sessions_active.set(2);
  m.longpoll_sessions_opened.inc(4);
  m.longpoll_messages_buffered.inc(20);
  m.longpoll_messages_dropped.inc(1);
  m.rooms.set(6);
  EXPECT_TRUE(m.set_lifecycle_state("draining"));
  m.drain_duration_seconds.set(1.25);
  m.drain_sessions_forced.inc(2);
  m.drain_sessions_closed_cleanly.inc(8);
  for (double s : {0.00005, 0.0003, 0.02, 0.7, 9.0}) m.store_write_duration.observe(s);
  m.count_http_request("GET", 200);
  m.count_http_request("POST", 404);
  m.count_http_request("BREW", 418);  // method other
  m.count_http_request("GET", 700);   // status other
  m.http_request_duration.observe(std::chrono::microseconds{1500});
  m.http_requests_in_flight.set(1);
}

TEST(WebSocketMetrics, EachFamilyOnceWithHelpAndType) {
  WebSocketMetrics m;
  populate(m);
  std::map<std::string, int> help, type;
  std::vector<std::string> declared;
  for (const std::string& line : lines_of(m.render())) {
    std::istringstream words(line);
    std::string hash, keyword, name;
    if (line.starts_with("# HELP ")) {
      words >> hash >> keyword >> name;
      ++help[name];
      declared.push_back(name);
    } else if (line.starts_with("# TYPE ")) {
      words >> hash >> keyword >> name;
      ++type[name];
      ASSERT_FALSE(declared.empty());
      EXPECT_EQ(declared.back(), name) << "TYPE follows its HELP";
    } else {
      // A sample belongs to the family declared last above it.
      ASSERT_FALSE(declared.empty()) << line;
      EXPECT_TRUE(line.starts_with(declared.back())) << line;
      EXPECT_TRUE(line.starts_with("ebb_")) << line;
    }
  }
  for (const std::string& family : kFamilies) {
    EXPECT_EQ(help[family], 1) << family;
    EXPECT_EQ(type[family], 1) << family;
  }
  EXPECT_EQ(help.size(), kFamilies.size());
  EXPECT_EQ(type.size(), kFamilies.size());
}

TEST(WebSocketMetrics, BoundedLabelsMapToTheirValues) {
  WebSocketMetrics m;
  populate(m);
  const std::string text = m.render();
  EXPECT_THAT(text, HasSubstr("ebb_websocket_closes_total{code=\"1000\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_websocket_closes_total{code=\"4999\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_websocket_closes_total{code=\"other\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("ebb_websocket_closes_total{code=\"1002\"}")));  // zero: hidden
  EXPECT_THAT(text, HasSubstr("ebb_websocket_handshakes_failed_total{status=\"503\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_websocket_handshakes_failed_total{status=\"other\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_http_requests_total{method=\"GET\",status=\"200\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_http_requests_total{method=\"other\",status=\"418\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_http_requests_total{method=\"GET\",status=\"other\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_websocket_messages_received_total{kind=\"text\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_websocket_received_bytes_total 107\n"));
  EXPECT_THAT(text, HasSubstr("ebb_errors_total{kind=\"handler_exception\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_lifecycle_state{state=\"draining\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_lifecycle_state{state=\"ready\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("ebb_drain_duration_seconds 1.25\n"));
  EXPECT_THAT(text, HasSubstr("ebb_store_write_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_store_write_duration_seconds_bucket{le=\"5\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("ebb_store_write_duration_seconds_bucket{le=\"+Inf\"} 5\n"));
}

TEST(WebSocketMetrics, FreshMetricsShowZerosAndStartingState) {
  WebSocketMetrics m;
  const std::string text = m.render();
  EXPECT_THAT(text, HasSubstr("ebb_lifecycle_state{state=\"starting\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("ebb_errors_total{kind=\"protocol\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("ebb_websocket_messages_sent_total{kind=\"binary\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("ebb_websocket_closes_total{")));
}

TEST(WebSocketMetrics, LifecycleStateByName) {
  WebSocketMetrics m;
  for (std::string_view state : WebSocketMetrics::lifecycle_states) {
    ASSERT_TRUE(m.set_lifecycle_state(state));
    EXPECT_EQ(m.lifecycle_state.states()[m.lifecycle_state.current()], state);
  }
  EXPECT_FALSE(m.set_lifecycle_state("exploded"));
  EXPECT_EQ(m.lifecycle_state.states()[m.lifecycle_state.current()], "stopped");
}

TEST(WebSocketMetrics, ApplicationMetricsRenderAlongside) {
  WebSocketMetrics m;
  m.registry().counter("app_jobs_total", "Jobs.").inc();
  EXPECT_THAT(m.render(), HasSubstr("# TYPE app_jobs_total counter\napp_jobs_total 1\n"));
  EXPECT_THROW(m.registry().gauge("ebb_rooms", "again"), std::invalid_argument);
}

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), pipe))
    result.output.append(buf.data(), n);
  const int raw = ::pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

// Runs `promtool check metrics` (parse + lint: naming, units, HELP, counter
// suffixes) over `exposition`. Fails, not skips, when promtool is missing: CI
// installs it (Debian package `prometheus`, scripts/setup.sh).
void expect_promtool_clean(const std::string& exposition) {
  const CommandResult which = run("command -v promtool");
  ASSERT_EQ(which.status, 0) << "promtool not found (Debian package `prometheus`; run "
                                "scripts/setup.sh)";
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("ebb_metrics_" + std::to_string(::getpid()) + ".prom");
  {
    std::ofstream out(file, std::ios::binary);
    out << exposition;
    ASSERT_TRUE(out.good());
  }
  const CommandResult check = run("promtool check metrics < '" + file.string() + "'");
  std::filesystem::remove(file);
  EXPECT_EQ(check.status, 0) << check.output;
  // Any line is a finding (problems go to stdout/stderr, lint ones with status 3).
  EXPECT_EQ(check.output, "") << "promtool printed findings";
}

TEST(WebSocketMetrics, PromtoolAcceptsFullyPopulatedRenderWithoutFindings) {
  WebSocketMetrics m;
  populate(m);
  expect_promtool_clean(m.render());
}

TEST(WebSocketMetrics, PromtoolAcceptsFreshRenderWithoutFindings) {
  WebSocketMetrics m;
  expect_promtool_clean(m.render());
}

// The check above can fail: promtool does flag a lint problem.
TEST(WebSocketMetrics, PromtoolFlagsALintProblem) {
  const CommandResult check =
      run("printf '# TYPE x_count counter\\nx_count 1\\n' | promtool check metrics");
  EXPECT_NE(check.status, 0);
  EXPECT_THAT(check.output, HasSubstr("x_count"));
}

}  // namespace
}  // namespace ebb::websocket
