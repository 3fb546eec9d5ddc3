#include "ebb/store/message_store.hpp"

#include <string>

namespace ebb::websocket {
namespace {

class StoreCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ebb.store"; }

  std::string message(int value) const override {
    switch (static_cast<store_error>(value)) {
      case store_error::closed:
        return "message store is closed";
      case store_error::queue_full:
        return "message store write queue is full";
      case store_error::write_failed:
        return "message store commit failed";
      case store_error::read_failed:
        return "message store read failed";
      case store_error::open_failed:
        return "cannot open the message store database";
      case store_error::not_a_database:
        return "file is not an SQLite database or is corrupt";
      case store_error::incompatible_schema:
        return "database is not a message store this build can use";
    }
    return "unknown ebb.store error " + std::to_string(value);
  }

  // Lets callers test `ec == std::errc::...` without knowing the enum.
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<store_error>(value)) {
      case store_error::closed:
        return std::make_error_condition(std::errc::operation_canceled);
      case store_error::queue_full:
        return std::make_error_condition(std::errc::resource_unavailable_try_again);
      default:
        return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& store_category() noexcept {
  static const StoreCategory category;
  return category;
}

}  // namespace ebb::websocket
