#pragma once
// The HTTP part of ebb: App, Request, Response, their options.
#include "ebb/http/app.hpp"
#include "ebb/http/options.hpp"
#include "ebb/http/request.hpp"
#include "ebb/http/response.hpp"
