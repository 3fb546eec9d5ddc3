#include "ebb/metrics/prometheus.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace ebb::metrics {
namespace {

// A dense family bigger than this is a mistake (a label that should not be one).
constexpr std::size_t kMaxDenseCells = std::size_t{1} << 20;

[[noreturn]] void reject(std::string_view what, std::string_view name, std::string_view why) {
  throw std::invalid_argument("ebb::metrics: invalid " + std::string(what) + " \"" +
                              std::string(name) + "\": " + std::string(why));
}

bool is_snake_case_identifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::array<std::uint32_t, 5> kMinForLength{0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

bool has_suffix(std::string_view s, std::string_view suffix) { return s.ends_with(suffix); }

void validate_metric_name(std::string_view name, MetricType type) {
  if (!is_snake_case_identifier(name)) {
    reject("metric name", name, "must match [a-z_][a-z0-9_]* (snake_case, no ':')");
  }
  const bool total = has_suffix(name, "_total");
  if (type == MetricType::counter && !total)
    reject("metric name", name, "a counter ends in _total");
  if (type != MetricType::counter && total) {
    reject("metric name", name, "only counters end in _total");
  }
  for (std::string_view reserved : {"_bucket", "_sum", "_count"}) {
    if (has_suffix(name, reserved)) {
      reject("metric name", name, "the suffix " + std::string(reserved) + " is reserved");
    }
  }
  for (std::string_view type_word : {"counter", "gauge", "histogram", "summary"}) {
    const std::string word = "_" + std::string(type_word);
    if (has_suffix(name, word) || name.find(word + "_") != std::string_view::npos) {
      reject("metric name", name, "the type does not belong in the name");
    }
  }
}

void validate_label_names(std::span<const std::string> names) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (!is_snake_case_identifier(n)) {
      reject("label name", n, "must match [a-z_][a-z0-9_]* (snake_case)");
    }
    if (n.starts_with("__")) reject("label name", n, "names starting with __ are reserved");
    if (n == "le" || n == "quantile") reject("label name", n, "reserved for histograms/summaries");
    if (std::find(names.begin(), names.begin() + i, n) != names.begin() + i) {
      reject("label name", n, "appears twice");
    }
  }
}

void validate_bounds(const std::vector<double>& bounds) {
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("ebb::metrics: histogram bucket bounds must be finite");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("ebb::metrics: histogram bucket bounds must increase strictly");
    }
  }
}

// `{a="x",b="y",extra="v"}`, or nothing when there are no labels at all.
void append_labels(std::string& out, std::span<const std::string> names,
                   std::span<const std::string> values, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped_label_value(out, values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    append_escaped_label_value(out, extra_value);
    out += '"';
  }
  out += '}';
}

void append_uint(std::string& out, std::uint64_t v) {
  std::array<char, 24> buf;
  const auto result = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), result.ptr);
}

void append_line(std::string& out, std::string_view name, std::string_view suffix,
                 std::span<const std::string> names, std::span<const std::string> values,
                 std::string_view value, std::string_view extra_name = {},
                 std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  append_labels(out, names, values, extra_name, extra_value);
  out += ' ';
  out += value;
  out += '\n';
}

void append_samples(std::string& out, const std::string& name, std::span<const std::string> names,
                    std::span<const std::string> values, const Counter& c) {
  std::string v;
  append_uint(v, c.value());
  append_line(out, name, "", names, values, v);
}

void append_samples(std::string& out, const std::string& name, std::span<const std::string> names,
                    std::span<const std::string> values, const Gauge& g) {
  append_line(out, name, "", names, values, format_value(g.value()));
}

void append_samples(std::string& out, const std::string& name, std::span<const std::string> names,
                    std::span<const std::string> values, const Histogram& h) {
  const Histogram::Snapshot s = h.snapshot();
  const auto& bounds = h.upper_bounds();
  std::string v;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    v.clear();
    append_uint(v, s.cumulative[i]);
    const std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
    append_line(out, name, "_bucket", names, values, v, "le", le);
  }
  append_line(out, name, "_sum", names, values, format_value(s.sum));
  v.clear();
  append_uint(v, s.count);
  append_line(out, name, "_count", names, values, v);
}

template <class Metric>
constexpr MetricType type_of() {
  if constexpr (std::same_as<Metric, Counter>) {
    return MetricType::counter;
  } else if constexpr (std::same_as<Metric, Gauge>) {
    return MetricType::gauge;
  } else {
    return MetricType::histogram;
  }
}

std::string_view type_name(MetricType t) {
  switch (t) {
    case MetricType::counter:
      return "counter";
    case MetricType::gauge:
      return "gauge";
    case MetricType::histogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

// ---- formatting ---------------------------------------------------------

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::array<char, 32> buf;
  std::to_chars_result result;
  constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
  if (v == std::trunc(v) && std::fabs(v) <= kExactIntegers) {
    result = std::to_chars(buf.data(), buf.data() + buf.size(), static_cast<std::int64_t>(v));
  } else {
    result = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::general);
  }
  return std::string(buf.data(), result.ptr);
}

void append_escaped_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_escaped_help(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// ---- Histogram ----------------------------------------------------------

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  validate_bounds(bounds_);
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double v) noexcept {
  // lower_bound: the first bound >= v, i.e. the bucket whose `le` includes v.
  // NaN compares false against everything, so it falls through to +Inf.
  const auto it =
      std::isnan(v) ? bounds_.end() : std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// ---- Collector ----------------------------------------------------------

Collector::Collector(std::string name, std::string help, MetricType type,
                     std::span<const std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), type_(type) {
  validate_metric_name(name_, type_);
  validate_label_names(label_names);
  if (help_.empty()) reject("HELP text of", name_, "must not be empty");
  if (!is_valid_utf8(help_)) reject("HELP text of", name_, "must be UTF-8");
}

// ---- Family -------------------------------------------------------------

template <class Metric>
Family<Metric>::Family(
    std::string name, std::string help,
    std::vector<std::string> label_names) requires(!std::same_as<Metric, Histogram>)
    : Collector(std::move(name), std::move(help), type_of<Metric>(), label_names),
      label_names_(std::move(label_names)) {}

template <class Metric>
Family<Metric>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                       std::vector<double> upper_bounds) requires std::same_as<Metric, Histogram>
    : Collector(std::move(name), std::move(help), MetricType::histogram, label_names),
      label_names_(std::move(label_names)),
      upper_bounds_(std::move(upper_bounds)) {
  validate_bounds(upper_bounds_);
}

template <class Metric>
Metric& Family<Metric>::with(std::initializer_list<std::string_view> label_values) {
  return find_or_create(std::vector<std::string>(label_values.begin(), label_values.end()));
}

template <class Metric>
Metric& Family<Metric>::with(std::span<const std::string> label_values) {
  return find_or_create(std::vector<std::string>(label_values.begin(), label_values.end()));
}

template <class Metric>
Metric& Family<Metric>::find_or_create(std::vector<std::string> label_values) {
  if (label_values.size() != label_names_.size()) {
    throw std::invalid_argument("ebb::metrics: " + name() + " has " +
                                std::to_string(label_names_.size()) + " labels, got " +
                                std::to_string(label_values.size()) + " values");
  }
  for (const std::string& v : label_values) {
    if (!is_valid_utf8(v)) reject("label value of", name(), "must be UTF-8");
  }
  std::lock_guard lock(mutex_);
  auto it = children_.find(label_values);
  if (it == children_.end()) {
    std::unique_ptr<Metric> child;
    if constexpr (std::same_as<Metric, Histogram>) {
      child = std::make_unique<Histogram>(upper_bounds_);
    } else {
      child = std::make_unique<Metric>();
    }
    it = children_.emplace(std::move(label_values), std::move(child)).first;
  }
  return *it->second;
}

template <class Metric>
std::size_t Family<Metric>::size() const {
  std::lock_guard lock(mutex_);
  return children_.size();
}

template <class Metric>
void Family<Metric>::render_samples(std::string& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& [values, child] : children_) {
    append_samples(out, name(), label_names_, values, *child);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- LabelValues --------------------------------------------------------

LabelValues::LabelValues(std::string label_name, std::vector<std::string> values)
    : label_name_(std::move(label_name)), values_(std::move(values)) {
  if (values_.empty()) reject("label", label_name_, "needs at least one value");
  for (std::size_t i = 0; i < values_.size(); ++i) {
    if (!is_valid_utf8(values_[i])) reject("label value of", label_name_, "must be UTF-8");
    if (std::find(values_.begin(), values_.begin() + i, values_[i]) != values_.begin() + i) {
      reject("label value", values_[i], "appears twice");
    }
  }
}

LabelValues LabelValues::integer_range(std::string label_name, int first, int last,
                                       std::string overflow) {
  if (last < first) reject("label", label_name, "integer range is empty");
  LabelValues values(std::move(label_name), {std::move(overflow)});
  const std::string& other = values.values_.front();
  int parsed = 0;
  const auto [ptr, ec] = std::from_chars(other.data(), other.data() + other.size(), parsed);
  if (ec == std::errc{} && ptr == other.data() + other.size() && parsed >= first &&
      parsed <= last) {
    reject("label value", other, "overflow value lies inside the integer range");
  }
  values.first_ = first;
  values.range_size_ = static_cast<std::size_t>(last - first) + 1;
  return values;
}

std::string LabelValues::value(std::size_t index) const {
  if (index < range_size_) return std::to_string(first_ + static_cast<int>(index));
  return values_.at(index - range_size_);
}

std::size_t LabelValues::index_of(int v) const noexcept {
  const auto offset = static_cast<long long>(v) - first_;
  if (range_size_ > 0) {
    return offset >= 0 && static_cast<std::size_t>(offset) < range_size_
               ? static_cast<std::size_t>(offset)
               : range_size_;
  }
  return v >= 0 && static_cast<std::size_t>(v) < size() ? static_cast<std::size_t>(v) : size() - 1;
}

// ---- DenseCounterFamily -------------------------------------------------

std::vector<std::string> DenseCounterFamily::names_of(const std::vector<LabelValues>& labels) {
  std::vector<std::string> names;
  for (const auto& l : labels) names.push_back(l.label_name());
  return names;
}

DenseCounterFamily::DenseCounterFamily(std::string name, std::string help,
                                       std::vector<LabelValues> labels, Zeros zeros)
    : Collector(std::move(name), std::move(help), MetricType::counter, names_of(labels)),
      labels_(std::move(labels)),
      zeros_(zeros),
      cells_(1) {
  for (const auto& l : labels_) {
    cells_ *= l.size();
    if (cells_ > kMaxDenseCells) reject("metric", this->name(), "label space too large");
  }
  counters_ = std::make_unique<Counter[]>(cells_);
}

std::size_t DenseCounterFamily::offset(std::initializer_list<std::size_t> indices) const noexcept {
  std::size_t off = 0;
  auto it = indices.begin();
  for (const auto& l : labels_) {
    const std::size_t i = it != indices.end() ? std::min(*it++, l.size() - 1) : 0;
    off = off * l.size() + i;
  }
  return off;
}

Counter& DenseCounterFamily::at(std::initializer_list<std::size_t> indices) noexcept {
  return counters_[offset(indices)];
}

const Counter& DenseCounterFamily::at(std::initializer_list<std::size_t> indices) const noexcept {
  return counters_[offset(indices)];
}

void DenseCounterFamily::render_samples(std::string& out) const {
  const std::vector<std::string> names = names_of(labels_);
  std::vector<std::string> values(labels_.size());
  for (std::size_t cell = 0; cell < cells_; ++cell) {
    const std::uint64_t v = counters_[cell].value();
    if (v == 0 && zeros_ == Zeros::skip) continue;
    std::size_t rest = cell;
    for (std::size_t k = labels_.size(); k-- > 0;) {
      values[k] = labels_[k].value(rest % labels_[k].size());
      rest /= labels_[k].size();
    }
    std::string text;
    append_uint(text, v);
    append_line(out, name(), "", names, values, text);
  }
}

// ---- OneHotGauge --------------------------------------------------------

OneHotGauge::OneHotGauge(std::string name, std::string help, std::string label_name,
                         std::vector<std::string> states)
    : Collector(std::move(name), std::move(help), MetricType::gauge,
                std::span<const std::string>(&label_name, 1)),
      label_name_(std::move(label_name)),
      states_(std::move(states)) {
  LabelValues check(label_name_, states_);  // non-empty, distinct, UTF-8
}

void OneHotGauge::set(std::size_t index) noexcept {
  if (index < states_.size()) current_.store(index, std::memory_order_relaxed);
}

void OneHotGauge::render_samples(std::string& out) const {
  const std::size_t now = current();
  const std::span<const std::string> names(&label_name_, 1);
  for (std::size_t i = 0; i < states_.size(); ++i) {
    append_line(out, name(), "", names, std::span<const std::string>(&states_[i], 1),
                i == now ? "1" : "0");
  }
}

// ---- Registry -----------------------------------------------------------

Registry::Registry() = default;
Registry::~Registry() = default;

Counter& Registry::counter(std::string name, std::string help) {
  return counter_family(std::move(name), std::move(help), {}).with({});
}

Gauge& Registry::gauge(std::string name, std::string help) {
  return gauge_family(std::move(name), std::move(help), {}).with({});
}

Histogram& Registry::histogram(std::string name, std::string help,
                               std::vector<double> upper_bounds) {
  return histogram_family(std::move(name), std::move(help), {}, std::move(upper_bounds)).with({});
}

CounterFamily& Registry::counter_family(std::string name, std::string help,
                                        std::vector<std::string> label_names) {
  return add(
      std::make_unique<CounterFamily>(std::move(name), std::move(help), std::move(label_names)));
}

GaugeFamily& Registry::gauge_family(std::string name, std::string help,
                                    std::vector<std::string> label_names) {
  return add(
      std::make_unique<GaugeFamily>(std::move(name), std::move(help), std::move(label_names)));
}

HistogramFamily& Registry::histogram_family(std::string name, std::string help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> upper_bounds) {
  return add(std::make_unique<HistogramFamily>(std::move(name), std::move(help),
                                               std::move(label_names), std::move(upper_bounds)));
}

void Registry::add_collector(std::unique_ptr<Collector> collector) {
  std::vector<std::string> samples{collector->name()};
  if (collector->type() == MetricType::histogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      samples.push_back(collector->name() + suffix);
    }
  }
  std::lock_guard lock(mutex_);
  for (const auto& s : samples) {
    if (sample_names_.contains(s)) reject("metric name", s, "already registered");
  }
  sample_names_.insert(samples.begin(), samples.end());
  std::string key = collector->name();
  families_.emplace(std::move(key), std::move(collector));
}

std::string Registry::render() const {
  std::string out;
  render_to(out);
  return out;
}

void Registry::render_to(std::string& out) const {
  std::lock_guard lock(mutex_);
  for (const auto& [name, family] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped_help(out, family->help());
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(family->type());
    out += '\n';
    family->render_samples(out);
  }
}

}  // namespace ebb::metrics
