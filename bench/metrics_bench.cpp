// Cost of a metric update on the hot path, and what contention does to it:
// every benchmark runs with 1 and 2 threads. "Shared" updates one metric from
// all threads (one contended cache line); "Private" gives each thread its own
// (the floor that per-thread sharding could reach).
//
//   cmake --build build/release --target metrics_bench && build/release/bench/metrics_bench
#include <benchmark/benchmark.h>

#include <memory>

#include "ebb/metrics/prometheus.hpp"
#include "ebb/metrics/websocket_metrics.hpp"

namespace {

using ebb::metrics::Counter;
using ebb::metrics::Gauge;
using ebb::metrics::Histogram;

Counter shared_counter;
Gauge shared_gauge;
Histogram shared_histogram(ebb::websocket::WebSocketMetrics::duration_buckets());
ebb::websocket::WebSocketMetrics shared_metrics;

void BM_CounterIncShared(benchmark::State& state) {
  for (auto _ : state) shared_counter.inc();
}
BENCHMARK(BM_CounterIncShared)->Threads(1)->Threads(2);

void BM_CounterIncPrivate(benchmark::State& state) {
  struct alignas(64) Padded {  // one per thread, on its own cache line
    Counter counter;
  };
  auto mine = std::make_unique<Padded>();
  for (auto _ : state) mine->counter.inc();
  benchmark::DoNotOptimize(mine->counter.value());
}
BENCHMARK(BM_CounterIncPrivate)->Threads(1)->Threads(2);

void BM_GaugeIncDecShared(benchmark::State& state) {
  for (auto _ : state) {
    shared_gauge.inc();
    shared_gauge.dec();
  }
}
BENCHMARK(BM_GaugeIncDecShared)->Threads(1)->Threads(2);

void BM_HistogramObserveShared(benchmark::State& state) {
  double v = 0.0003;
  for (auto _ : state) {
    shared_histogram.observe(v);
    v = v < 4 ? v * 1.7 : 0.0003;
  }
}
BENCHMARK(BM_HistogramObserveShared)->Threads(1)->Threads(2);

void BM_CountCloseShared(benchmark::State& state) {
  int code = 1000;
  for (auto _ : state) {
    shared_metrics.count_close(code);
    code = code == 1011 ? 1000 : code + 1;
  }
}
BENCHMARK(BM_CountCloseShared)->Threads(1)->Threads(2);

void BM_CountMessageShared(benchmark::State& state) {
  for (auto _ : state) {
    shared_metrics.count_message_received(ebb::websocket::WebSocketMetrics::MessageKind::text, 64);
  }
}
BENCHMARK(BM_CountMessageShared)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
