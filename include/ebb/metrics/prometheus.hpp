#pragma once
// ebb::metrics: Prometheus metric primitives, a registry, and the text
// exposition format 0.0.4 (what `/metrics` serves).
//
//   ebb::metrics::Registry registry;
//   auto& requests = registry.counter_family("app_requests_total", "Requests served.",
//                                            {"route"});
//   ebb::metrics::Counter& home = requests.with({"/"});   // may lock: do it once
//   home.inc();                                            // hot path: one relaxed atomic
//   std::string body = registry.render();
//
// Hot path: Counter::inc, Gauge::set/inc/dec, Histogram::observe and
// DenseCounterFamily::at/OneHotGauge::set never lock and never allocate; each
// is one or two relaxed atomic operations. Only creating things locks:
// registering a family and the first Family::with() for a label set.
//
// Consistency: render() reads each atomic once, relaxed. A scrape taken while
// updates run sees every value at some recent point, not one global snapshot;
// within one histogram `_count` always equals the `+Inf` bucket (both are
// computed from the same reads), while `_sum` may trail or lead them by the
// observations in flight.
//
// Threads: every member function of every class here is safe to call from any
// thread concurrently with any other, including render() during updates and
// registration, unless it says otherwise.
//
// Lifetime: a Registry owns its families and a family owns its children. A
// reference returned by the registry or by with() stays valid (same object,
// never moved) until the Registry is destroyed; nothing is ever removed.
//
// Names: metric and label names are checked when a family is created and a
// bad one throws std::invalid_argument naming it. The check is the format's
// grammar plus the conventions `promtool check metrics` lints for, so that
// anything that registers also lints clean: snake_case (no upper case, no ':'),
// counters end in `_total`, other types do not, only histograms own the
// `_bucket`/`_sum`/`_count` suffixes and the `le` label, and `quantile` and
// `__*` labels are reserved. Units belong in the name, in base units
// (`_seconds`, `_bytes`).
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ebb::metrics {

/// A monotonically increasing count (Prometheus counter). Starts at 0.
/// Integral: a uint64_t that wraps only after 2^64 increments.
class Counter {
 public:
  Counter() noexcept = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  /// Adds n. Lock-free, relaxed.
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down (Prometheus gauge). Starts at 0.
/// A double: integer values are exact up to 2^53, which covers every count
/// (connections, sessions, rooms) as well as durations in seconds. inc/dec
/// are a lock-free compare-and-swap loop (x86-64 has no atomic double add).
class Gauge {
 public:
  Gauge() noexcept = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void inc(double n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  void dec(double n = 1) noexcept { value_.fetch_sub(n, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  static_assert(std::atomic<double>::is_always_lock_free);
  std::atomic<double> value_{0.0};
};

/// A distribution over fixed buckets (Prometheus histogram). Renders the
/// cumulative `_bucket{le="..."}` lines including `le="+Inf"`, then `_sum`
/// and `_count`.
class Histogram {
 public:
  /// `upper_bounds`: finite, strictly increasing (may be empty); the `+Inf`
  /// bucket is implicit. Throws std::invalid_argument otherwise.
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  /// Counts v in the first bucket whose bound is >= v (so `le` is inclusive)
  /// and adds it to the sum. Lock-free: a binary search over the bounds, one
  /// atomic add and one CAS loop. NaN lands in `+Inf` and makes the sum NaN.
  void observe(double v) noexcept;
  /// Observes a duration in seconds.
  template <class Rep, class Period>
  void observe(std::chrono::duration<Rep, Period> d) noexcept {
    observe(std::chrono::duration<double>(d).count());
  }

  const std::vector<double>& upper_bounds() const noexcept { return bounds_; }

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  ///< one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;  ///< == cumulative.back()
  };
  /// One relaxed read of every bucket.
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0.0};
};

enum class MetricType { counter, gauge, histogram };

/// One metric family as it appears in the exposition: a name, a HELP text, a
/// TYPE and the sample lines. The registry renders `# HELP` and `# TYPE`; a
/// collector renders its samples. Derive to expose something the classes
/// below do not cover.
class Collector {
 public:
  virtual ~Collector() = default;
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  MetricType type() const noexcept { return type_; }

  /// Appends this family's sample lines, each ending in '\n'. Runs
  /// concurrently with updates and must not block them.
  virtual void render_samples(std::string& out) const = 0;

 protected:
  /// Validates `name` for `type` (see the header comment) and every label
  /// name; throws std::invalid_argument naming the first bad one.
  Collector(std::string name, std::string help, MetricType type,
            std::span<const std::string> label_names);

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
};

/// Metrics of one type sharing a name and a fixed list of label names; one
/// child per distinct list of label values. Use `CounterFamily`,
/// `GaugeFamily`, `HistogramFamily`. Children render sorted by label values.
template <class Metric>
class Family final : public Collector {
 public:
  /// For Counter and Gauge.
  Family(std::string name, std::string help,
         std::vector<std::string> label_names) requires(!std::same_as<Metric, Histogram>);
  /// For Histogram: every child gets these bucket bounds (validated here).
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> upper_bounds) requires std::same_as<Metric, Histogram>;

  /// The child for these label values (one per label name, in order; any
  /// UTF-8 text, escaped on output), created on first use. Locks a mutex:
  /// keep the reference instead of calling this per update. Every label set
  /// is a time series kept forever, so label values must come from a bounded
  /// set. Throws std::invalid_argument on a wrong number of values.
  Metric& with(std::initializer_list<std::string_view> label_values);
  Metric& with(std::span<const std::string> label_values);

  const std::vector<std::string>& label_names() const noexcept { return label_names_; }
  /// Number of children created so far.
  std::size_t size() const;

  void render_samples(std::string& out) const override;

 private:
  Metric& find_or_create(std::vector<std::string> label_values);

  std::vector<std::string> label_names_;
  std::vector<double> upper_bounds_;  // histograms only
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

/// The values one label of a DenseCounterFamily takes, in render order.
class LabelValues {
 public:
  /// Exactly these values.
  LabelValues(std::string label_name, std::vector<std::string> values);
  /// The integers first..last in decimal, then `overflow` for anything else
  /// (index_of maps out-of-range integers there).
  static LabelValues integer_range(std::string label_name, int first, int last,
                                   std::string overflow = "other");

  const std::string& label_name() const noexcept { return label_name_; }
  std::size_t size() const noexcept { return range_size_ + values_.size(); }
  /// The label value at `index` (< size()).
  std::string value(std::size_t index) const;
  /// For integer_range: the index of v, or of the overflow value when v is
  /// out of range. For an enumeration: v itself if < size(), else the last.
  std::size_t index_of(int v) const noexcept;

 private:
  std::string label_name_;
  int first_ = 0;
  std::size_t range_size_ = 0;
  std::vector<std::string> values_;
};

/// A counter family over the cross product of fixed label value sets, held
/// in one array: lookup is index arithmetic, lock-free, no allocation. For
/// bounded label spaces known up front (close codes, HTTP status codes,
/// methods, error kinds). Children render in index order; with Zeros::skip
/// only nonzero ones (a large space stays cheap to scrape).
class DenseCounterFamily final : public Collector {
 public:
  enum class Zeros { render, skip };
  DenseCounterFamily(std::string name, std::string help, std::vector<LabelValues> labels,
                     Zeros zeros);

  /// The counter at one index per label, in label order. An index past its
  /// label's size is clamped to the last value (the overflow slot of an
  /// integer_range); missing indices count as 0.
  Counter& at(std::initializer_list<std::size_t> indices) noexcept;
  const Counter& at(std::initializer_list<std::size_t> indices) const noexcept;

  const std::vector<LabelValues>& labels() const noexcept { return labels_; }
  void render_samples(std::string& out) const override;

 private:
  std::size_t offset(std::initializer_list<std::size_t> indices) const noexcept;
  static std::vector<std::string> names_of(const std::vector<LabelValues>& labels);

  std::vector<LabelValues> labels_;
  Zeros zeros_;
  std::size_t cells_;
  std::unique_ptr<Counter[]> counters_;
};

/// A gauge family over one label where exactly one child is 1 and all others
/// are 0 (an enum as a metric: `x_state{state="ready"} 1`). The current
/// value is one atomic, so a scrape never sees two states or none.
class OneHotGauge final : public Collector {
 public:
  /// `states`: at least one, distinct. Starts at states[0].
  OneHotGauge(std::string name, std::string help, std::string label_name,
              std::vector<std::string> states);

  /// Makes states[index] the current one; an index past the end is ignored.
  void set(std::size_t index) noexcept;
  std::size_t current() const noexcept { return current_.load(std::memory_order_relaxed); }
  const std::vector<std::string>& states() const noexcept { return states_; }

  void render_samples(std::string& out) const override;

 private:
  std::string label_name_;
  std::vector<std::string> states_;
  std::atomic<std::size_t> current_{0};
};

/// Owns metric families and renders them. Families render sorted by name.
/// Neither copyable nor movable (references point into it).
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Unlabeled metrics: a family with no labels and its single child.
  Counter& counter(std::string name, std::string help);
  Gauge& gauge(std::string name, std::string help);
  Histogram& histogram(std::string name, std::string help, std::vector<double> upper_bounds);

  CounterFamily& counter_family(std::string name, std::string help,
                                std::vector<std::string> label_names);
  GaugeFamily& gauge_family(std::string name, std::string help,
                            std::vector<std::string> label_names);
  HistogramFamily& histogram_family(std::string name, std::string help,
                                    std::vector<std::string> label_names,
                                    std::vector<double> upper_bounds);

  /// Takes ownership of any collector. Throws std::invalid_argument if one of
  /// the sample names it renders (for a histogram also `_bucket`, `_sum`,
  /// `_count`) is already used by another family.
  template <std::derived_from<Collector> T>
  T& add(std::unique_ptr<T> collector) {
    T& ref = *collector;
    add_collector(std::move(collector));
    return ref;
  }

  /// The text exposition format 0.0.4 (Content-Type below): for each family
  /// `# HELP`, `# TYPE`, then its samples. Deterministic for equal values.
  std::string render() const;
  void render_to(std::string& out) const;

  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void add_collector(std::unique_ptr<Collector> collector);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Collector>, std::less<>> families_;
  std::set<std::string, std::less<>> sample_names_;
};

/// A sample value as the exposition writes it: integral values up to 2^53
/// without exponent or fraction ("42", "-3", "0"), `+Inf`, `-Inf`, `NaN`,
/// anything else in the shortest form that reads back exactly ("0.25",
/// "1e-07").
std::string format_value(double v);
/// Appends v escaped for a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
void append_escaped_label_value(std::string& out, std::string_view v);
/// Appends v escaped for a HELP text: `\` → `\\`, newline → `\n`.
void append_escaped_help(std::string& out, std::string_view v);

}  // namespace ebb::metrics
