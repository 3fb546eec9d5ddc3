#include "ebb/metrics/prometheus.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ebb::metrics {
namespace {

using ::testing::HasSubstr;

// The message of the std::invalid_argument `fn` throws, or "" if it throws none.
template <class Fn>
std::string invalid_argument_message(Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(PrometheusRender, ExactExpositionOfSmallRegistry) {
  Registry registry;
  auto& requests =
      registry.counter_family("app_requests_total", "Requests served.", {"method", "route"});
  requests.with({"GET", "/b"}).inc(2);
  requests.with({"GET", "/a"}).inc();
  registry.gauge("app_temperature_celsius", "Current temperature.").set(-3.5);
  auto& latency = registry.histogram_family("app_latency_seconds", "Request latency.", {"route"},
                                            {0.1, 0.5, 1});
  latency.with({"/a"}).observe(0.05);
  latency.with({"/a"}).observe(0.5);
  latency.with({"/a"}).observe(3);
  registry.counter("app_restarts_total", "Restarts.");

  EXPECT_EQ(registry.render(),
            "# HELP app_latency_seconds Request latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
            "app_latency_seconds_sum{route=\"/a\"} 3.55\n"
            "app_latency_seconds_count{route=\"/a\"} 3\n"
            "# HELP app_requests_total Requests served.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{method=\"GET\",route=\"/a\"} 1\n"
            "app_requests_total{method=\"GET\",route=\"/b\"} 2\n"
            "# HELP app_restarts_total Restarts.\n"
            "# TYPE app_restarts_total counter\n"
            "app_restarts_total 0\n"
            "# HELP app_temperature_celsius Current temperature.\n"
            "# TYPE app_temperature_celsius gauge\n"
            "app_temperature_celsius -3.5\n");
}

TEST(PrometheusRender, UnlabeledHistogramHasOnlyLeLabel) {
  Registry registry;
  auto& h = registry.histogram("job_duration_seconds", "Job time.", {1});
  h.observe(std::chrono::milliseconds{250});
  EXPECT_EQ(registry.render(),
            "# HELP job_duration_seconds Job time.\n"
            "# TYPE job_duration_seconds histogram\n"
            "job_duration_seconds_bucket{le=\"1\"} 1\n"
            "job_duration_seconds_bucket{le=\"+Inf\"} 1\n"
            "job_duration_seconds_sum 0.25\n"
            "job_duration_seconds_count 1\n");
}

TEST(PrometheusRender, EscapesLabelValuesAndHelp) {
  Registry registry;
  auto& family = registry.gauge_family(
      "app_paths", "Paths with a \\ backslash\nand a newline \"quoted\".", {"path"});
  family.with({"C:\\dir \"x\"\nnext"}).set(1);
  EXPECT_EQ(registry.render(),
            "# HELP app_paths Paths with a \\\\ backslash\\nand a newline \"quoted\".\n"
            "# TYPE app_paths gauge\n"
            "app_paths{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
}

TEST(PrometheusRender, FormatsValues) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(-0.0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(-7), "-7");
  EXPECT_EQ(format_value(1e15), "1000000000000000");
  EXPECT_EQ(format_value(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(format_value(1e20), "1e+20");
  EXPECT_EQ(format_value(0.0001), "0.0001");
  EXPECT_EQ(format_value(0.00025), "0.00025");
  EXPECT_EQ(format_value(1e-7), "1e-07");
  EXPECT_EQ(format_value(2.5), "2.5");
  EXPECT_EQ(std::stod(format_value(1.0 / 3)), 1.0 / 3);  // round-trips exactly
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(PrometheusHistogram, BucketsAreCumulativeAndUpperBoundInclusive) {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 4.5, 100.0}) h.observe(v);
  const Histogram::Snapshot s = h.snapshot();
  // 0.5,1 | 1.5,2 | 3,4 | 4.5,100
  EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 4, 6, 8}));
  EXPECT_EQ(s.count, 8u);
  EXPECT_DOUBLE_EQ(s.sum, 116.5);

  Registry registry;
  auto& r = registry.histogram("x_seconds", "x.", {1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 4.5, 100.0}) r.observe(v);
  const std::string text = registry.render();
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{le=\"2\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{le=\"4\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_bucket{le=\"+Inf\"} 8\n"));
  EXPECT_THAT(text, HasSubstr("x_seconds_count 8\n"));
}

TEST(PrometheusHistogram, NanGoesToInfBucketAndEmptyBoundsWork) {
  Histogram h({});
  h.observe(std::nan(""));
  h.observe(1);
  EXPECT_EQ(h.snapshot().cumulative, (std::vector<std::uint64_t>{2}));
  EXPECT_TRUE(std::isnan(h.snapshot().sum));
}

TEST(PrometheusHistogram, RejectsBadBounds) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  EXPECT_THROW(Histogram({std::nan("")}), std::invalid_argument);
  Registry registry;
  EXPECT_THROW(registry.histogram("y_seconds", "y.", {3, 2}), std::invalid_argument);
}

TEST(PrometheusConcurrency, IncrementsFromSeveralThreadsSumExactly) {
  Registry registry;
  auto& family = registry.counter_family("hits_total", "Hits.", {"shard"});
  auto& gauge = registry.gauge("level", "Level.");
  auto& histogram = registry.histogram("op_seconds", "Op.", {0.5});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      // Every thread creates/looks up the same child: one child, one total.
      Counter& c = family.with({"a"});
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        gauge.inc(2);
        gauge.dec();
        histogram.observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  std::string renders;
  for (int i = 0; i < 20; ++i) registry.render_to(renders);  // concurrently with updates
  for (auto& t : threads) t.join();

  EXPECT_EQ(family.size(), 1u);
  EXPECT_EQ(family.with({"a"}).value(), std::uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(gauge.value(), double{kThreads} * kPerThread);
  const auto s = histogram.snapshot();
  EXPECT_EQ(s.count, std::uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.cumulative[0], std::uint64_t{kThreads} * kPerThread / 2);
  EXPECT_DOUBLE_EQ(s.sum, kThreads * (kPerThread / 2) * 1.25);
  EXPECT_FALSE(renders.empty());
}

TEST(PrometheusFamily, ChildReferencesAreStable) {
  Registry registry;
  auto& family = registry.counter_family("things_total", "Things.", {"name"});
  Counter* first = &family.with({"a"});
  for (int i = 0; i < 1000; ++i) family.with({std::to_string(i)});
  EXPECT_EQ(first, &family.with({"a"}));
}

TEST(PrometheusFamily, RejectsWrongLabelCountAndInvalidUtf8) {
  Registry registry;
  auto& family = registry.counter_family("pairs_total", "Pairs.", {"a", "b"});
  EXPECT_THAT(invalid_argument_message([&] { family.with({"x"}); }), HasSubstr("pairs_total"));
  EXPECT_THROW(family.with({"x", "y", "z"}), std::invalid_argument);
  EXPECT_THROW(family.with({"x", "\xff"}), std::invalid_argument);
  EXPECT_THROW(family.with({"x", "\xc0\xaf"}), std::invalid_argument);  // overlong
  EXPECT_NO_THROW(family.with({"x", "caf\xc3\xa9 \xf0\x9f\x98\x80"}));
  EXPECT_EQ(family.size(), 1u);
}

TEST(PrometheusNames, BadMetricNamesAreRejectedByName) {
  struct Case {
    std::string name;
    enum { counter, gauge, histogram } type;
  };
  const std::vector<Case> cases{
      {"", Case::gauge},
      {"9lives", Case::gauge},
      {"has-dash", Case::gauge},
      {"has space", Case::gauge},
      {"camelCase", Case::gauge},
      {"rule:name", Case::gauge},
      {"requests", Case::counter},          // counter without _total
      {"queue_length_total", Case::gauge},  // _total on a gauge
      {"size_count", Case::gauge},
      {"latency_bucket", Case::gauge},
      {"latency_sum", Case::histogram},
      {"queue_gauge", Case::gauge},
      {"requests_counter_total", Case::counter},
  };
  for (const Case& c : cases) {
    Registry registry;
    const std::string message = invalid_argument_message([&] {
      if (c.type == Case::counter) registry.counter(c.name, "h");
      if (c.type == Case::gauge) registry.gauge(c.name, "h");
      if (c.type == Case::histogram) registry.histogram(c.name, "h", {1});
    });
    EXPECT_THAT(message, HasSubstr("\"" + c.name + "\"")) << "name: " << c.name;
  }
}

TEST(PrometheusNames, BadLabelNamesAreRejectedByName) {
  for (const std::string bad : {"le", "quantile", "__reserved", "Upper", "0x", "a-b", ""}) {
    Registry registry;
    EXPECT_THAT(invalid_argument_message([&] { registry.gauge_family("g", "h", {bad}); }),
                HasSubstr("\"" + bad + "\""))
        << "label: " << bad;
  }
  Registry registry;
  EXPECT_THAT(invalid_argument_message([&] {
                registry.gauge_family("g", "h", {"a", "a"});
              }),
              HasSubstr("\"a\""));
  EXPECT_THROW(registry.gauge("g", ""), std::invalid_argument);  // no HELP
}

TEST(PrometheusNames, DuplicateAndCollidingNamesAreRejected) {
  Registry registry;
  registry.gauge("up", "h");
  EXPECT_THAT(invalid_argument_message([&] { registry.gauge("up", "h"); }), HasSubstr("\"up\""));
  EXPECT_THROW(registry.counter_family("up", "h", {}), std::invalid_argument);
  registry.histogram("lat_seconds", "h", {1});
  EXPECT_THROW(registry.histogram("lat_seconds", "h", {1}), std::invalid_argument);
  EXPECT_THROW(registry.gauge("lat_seconds", "h"), std::invalid_argument);
  // A failed registration leaves the registry as it was.
  EXPECT_EQ(registry.render(),
            "# HELP lat_seconds h\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"1\"} 0\nlat_seconds_bucket{le=\"+Inf\"} 0\n"
            "lat_seconds_sum 0\nlat_seconds_count 0\n"
            "# HELP up h\n# TYPE up gauge\nup 0\n");
}

TEST(PrometheusDense, RendersInIndexOrderSkippingZerosAndClampsOverflow) {
  Registry registry;
  auto& dense = registry.add(std::make_unique<DenseCounterFamily>(
      "codes_total", "Codes.",
      std::vector<LabelValues>{LabelValues("dir", {"in", "out"}),
                               LabelValues::integer_range("code", 10, 12)},
      DenseCounterFamily::Zeros::skip));
  const LabelValues& code = dense.labels()[1];
  EXPECT_EQ(code.size(), 4u);
  EXPECT_EQ(code.index_of(10), 0u);
  EXPECT_EQ(code.index_of(12), 2u);
  EXPECT_EQ(code.index_of(9), 3u);
  EXPECT_EQ(code.index_of(13), 3u);
  EXPECT_EQ(code.value(3), "other");

  dense.at({1, code.index_of(11)}).inc(5);
  dense.at({0, code.index_of(99)}).inc();
  dense.at({0, 0}).inc();
  dense.at({7, 99}).inc();  // clamped to {out, other}
  EXPECT_EQ(registry.render(),
            "# HELP codes_total Codes.\n"
            "# TYPE codes_total counter\n"
            "codes_total{dir=\"in\",code=\"10\"} 1\n"
            "codes_total{dir=\"in\",code=\"other\"} 1\n"
            "codes_total{dir=\"out\",code=\"11\"} 5\n"
            "codes_total{dir=\"out\",code=\"other\"} 1\n");
}

TEST(PrometheusDense, RendersZerosWhenAsked) {
  Registry registry;
  auto& dense = registry.add(std::make_unique<DenseCounterFamily>(
      "kinds_total", "Kinds.", std::vector<LabelValues>{LabelValues("kind", {"a", "b"})},
      DenseCounterFamily::Zeros::render));
  dense.at({1}).inc();
  EXPECT_EQ(registry.render(),
            "# HELP kinds_total Kinds.\n"
            "# TYPE kinds_total counter\n"
            "kinds_total{kind=\"a\"} 0\n"
            "kinds_total{kind=\"b\"} 1\n");
  EXPECT_THROW(LabelValues("k", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(LabelValues("k", {}), std::invalid_argument);
  EXPECT_THROW(LabelValues::integer_range("k", 5, 4), std::invalid_argument);
  EXPECT_THROW(LabelValues::integer_range("k", 1, 10, "7"), std::invalid_argument);
}

TEST(PrometheusOneHot, ExactlyOneStateIsOne) {
  Registry registry;
  auto& state = registry.add(std::make_unique<OneHotGauge>(
      "svc_state", "State.", "state", std::vector<std::string>{"up", "down", "unknown"}));
  state.set(1);
  state.set(17);  // ignored
  EXPECT_EQ(state.current(), 1u);
  EXPECT_EQ(registry.render(),
            "# HELP svc_state State.\n"
            "# TYPE svc_state gauge\n"
            "svc_state{state=\"up\"} 0\n"
            "svc_state{state=\"down\"} 1\n"
            "svc_state{state=\"unknown\"} 0\n");
  EXPECT_THROW(OneHotGauge("x", "h", "state", {}), std::invalid_argument);
  EXPECT_THROW(OneHotGauge("x", "h", "le", {"a"}), std::invalid_argument);
}

}  // namespace
}  // namespace ebb::metrics
