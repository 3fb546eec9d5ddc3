#pragma once
// ebb's JSON types: Boost.JSON underneath, named for the API.
#include <boost/json.hpp>

namespace ebb::json {
/// A JSON object: the payload of a typed message {"type": ..., "payload": {...}}.
using kvs = boost::json::object;
using value = boost::json::value;
using object = boost::json::object;
using array = boost::json::array;
using string = boost::json::string;
using boost::json::parse;
using boost::json::serialize;
}  // namespace ebb::json
