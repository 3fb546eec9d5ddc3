#include "websocket/deflate/deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace ebb::websocket::deflate {
namespace {

DeflateOptions enabled() {
  DeflateOptions o;
  o.enabled = true;
  return o;
}

std::string bytes(std::initializer_list<unsigned> v) {
  std::string s;
  for (unsigned b : v) s.push_back(static_cast<char>(b));
  return s;
}

std::string random_text(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  static constexpr std::string_view words[] = {"alpha ", "beta ",    "gamma ", "delta ",
                                               "room ",  "message ", "hello ", "world "};
  std::string s;
  while (s.size() < n) s += words[rng() % std::size(words)];
  s.resize(n);
  return s;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// ---- negotiation (RFC 7692 §5, §7.1) ----

TEST(Negotiate, DisabledIgnoresEverything) {
  auto n = negotiate_server("permessage-deflate", DeflateOptions{});
  EXPECT_FALSE(n.params);
  EXPECT_TRUE(n.response.empty());
  EXPECT_TRUE(n.error.empty());
}

TEST(Negotiate, PlainOffer) {
  auto n = negotiate_server("permessage-deflate", enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate");
  EXPECT_FALSE(n.params->server_no_context_takeover);
  EXPECT_FALSE(n.params->client_no_context_takeover);
  EXPECT_EQ(n.params->server_max_window_bits, 15);
  EXPECT_EQ(n.params->client_max_window_bits, 15);
}

TEST(Negotiate, BrowserOffer) {
  // What Chromium and Firefox send.
  auto n = negotiate_server("permessage-deflate; client_max_window_bits", enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate");
  EXPECT_EQ(n.params->client_max_window_bits, 15);
}

TEST(Negotiate, Rfc7692Section7_1_3Examples) {
  // A server limiting the client's window when the client allows it.
  DeflateOptions o = enabled();
  o.client_max_window_bits = 10;
  auto n = negotiate_server("permessage-deflate; client_max_window_bits", o);
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate; client_max_window_bits=10");
  EXPECT_EQ(n.params->client_max_window_bits, 10);

  // Two offers: the first one that is acceptable wins.
  n = negotiate_server(
      "permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
      "permessage-deflate; client_max_window_bits",
      enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate; server_max_window_bits=10");
  EXPECT_EQ(n.params->server_max_window_bits, 10);

  // server_no_context_takeover offered must be echoed.
  n = negotiate_server("permessage-deflate; server_no_context_takeover", enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate; server_no_context_takeover");
  EXPECT_TRUE(n.params->server_no_context_takeover);
}

TEST(Negotiate, ClientWindowNotOfferedIsNeverSent) {
  DeflateOptions o = enabled();
  o.client_max_window_bits = 10;
  auto n = negotiate_server("permessage-deflate", o);
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate");
  EXPECT_EQ(n.params->client_max_window_bits, 15);
}

TEST(Negotiate, ClientWindowHint) {
  auto n = negotiate_server("permessage-deflate; client_max_window_bits=12", enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate; client_max_window_bits=12");
  EXPECT_EQ(n.params->client_max_window_bits, 12);
  n = negotiate_server("permessage-deflate; client_max_window_bits=8", enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response, "permessage-deflate; client_max_window_bits=9");
}

TEST(Negotiate, ServerWindowIsTheSmaller) {
  DeflateOptions o = enabled();
  o.server_max_window_bits = 12;
  auto n = negotiate_server("permessage-deflate; server_max_window_bits=10", o);
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.params->server_max_window_bits, 10);
  EXPECT_EQ(n.response, "permessage-deflate; server_max_window_bits=10");
  n = negotiate_server("permessage-deflate; server_max_window_bits=14", o);
  EXPECT_EQ(n.params->server_max_window_bits, 12);
  EXPECT_EQ(n.response, "permessage-deflate; server_max_window_bits=12");
  n = negotiate_server("permessage-deflate", o);
  EXPECT_EQ(n.params->server_max_window_bits, 12);
  EXPECT_EQ(n.response, "permessage-deflate; server_max_window_bits=12");
  n = negotiate_server("permessage-deflate; server_max_window_bits=15", enabled());
  EXPECT_EQ(n.response, "permessage-deflate; server_max_window_bits=15");
}

TEST(Negotiate, ServerWindow8IsDeclinedInFavourOfTheNextOffer) {
  auto n = negotiate_server("permessage-deflate; server_max_window_bits=8", enabled());
  EXPECT_FALSE(n.params);
  EXPECT_TRUE(n.error.empty());
  n = negotiate_server(
      "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
      enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.params->server_max_window_bits, 9);
}

TEST(Negotiate, ServerOptionsAddNoContextTakeover) {
  DeflateOptions o = enabled();
  o.server_no_context_takeover = true;
  o.client_no_context_takeover = true;
  auto n = negotiate_server("permessage-deflate", o);
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_TRUE(n.params->server_no_context_takeover);
  EXPECT_TRUE(n.params->client_no_context_takeover);
}

TEST(Negotiate, InvalidOffersAreDeclined) {
  for (const char* offer : {
           "permessage-deflate; foo",
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
           "permessage-deflate; client_no_context_takeover=1",
           "permessage-deflate; server_max_window_bits",
           "permessage-deflate; server_max_window_bits=7",
           "permessage-deflate; server_max_window_bits=16",
           "permessage-deflate; server_max_window_bits=010",
           "permessage-deflate; client_max_window_bits=x",
           "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
       }) {
    auto n = negotiate_server(offer, enabled());
    EXPECT_FALSE(n.params) << offer;
    EXPECT_TRUE(n.error.empty()) << offer;
    auto next = negotiate_server(std::string(offer) + ", permessage-deflate", enabled());
    EXPECT_TRUE(next.params) << offer;
    EXPECT_EQ(next.response, "permessage-deflate") << offer;
  }
}

TEST(Negotiate, QuotedValuesCaseAndUnknownExtensions) {
  auto n = negotiate_server(
      "x-webkit-deflate-frame, PerMessage-Deflate ; Server_Max_Window_Bits = \"11\"", enabled());
  ASSERT_TRUE(n.params);
  EXPECT_EQ(n.params->server_max_window_bits, 11);
  n = negotiate_server("x-foo; a=b, , permessage-deflate", enabled());
  EXPECT_TRUE(n.params);
  n = negotiate_server("x-foo", enabled());
  EXPECT_FALSE(n.params);
  EXPECT_TRUE(n.error.empty());
}

TEST(Negotiate, MalformedHeaderIsAnError) {
  for (const char* offer :
       {"permessage-deflate;", "permessage-deflate; =1", "permessage deflate",
        "permessage-deflate; a=\"unterminated", "permessage-deflate; a=\"\"",
        "permessage-deflate; a=\"b c\"", "(bad)", "permessage-deflate; a=b=c"}) {
    auto n = negotiate_server(offer, enabled());
    EXPECT_FALSE(n.params) << offer;
    EXPECT_FALSE(n.error.empty()) << offer;
  }
}

TEST(ClientOffer, Formatting) {
  EXPECT_EQ(client_offer(DeflateOptions{}), "");
  EXPECT_EQ(client_offer(enabled()), "permessage-deflate; client_max_window_bits");
  DeflateOptions o = enabled();
  o.server_no_context_takeover = o.client_no_context_takeover = true;
  o.server_max_window_bits = 10;
  o.client_max_window_bits = 11;
  EXPECT_EQ(client_offer(o),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=11");
}

TEST(ClientResponse, RoundTripAgainstServerNegotiation) {
  DeflateOptions client = enabled();
  client.server_max_window_bits = 12;
  client.client_no_context_takeover = true;
  DeflateOptions server = enabled();
  server.client_max_window_bits = 10;
  auto n = negotiate_server(client_offer(client), server);
  ASSERT_TRUE(n.params);
  std::string err;
  auto p = parse_server_response(n.response, client, err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->server_max_window_bits, n.params->server_max_window_bits);
  EXPECT_EQ(p->server_max_window_bits, 12);
  EXPECT_EQ(p->client_max_window_bits, 10);
  EXPECT_EQ(n.params->client_max_window_bits, 10);
  EXPECT_TRUE(p->client_no_context_takeover);
  EXPECT_TRUE(n.params->client_no_context_takeover);
}

TEST(ClientResponse, Accepted) {
  std::string err;
  auto p = parse_server_response("permessage-deflate", enabled(), err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->server_max_window_bits, 15);
  // The server may add server_no_context_takeover unasked (RFC 7692 §7.1.1.1).
  p = parse_server_response("permessage-deflate; server_no_context_takeover", enabled(), err);
  ASSERT_TRUE(p) << err;
  EXPECT_TRUE(p->server_no_context_takeover);
  // A server window of 8 is fine for our inflater.
  p = parse_server_response("permessage-deflate; server_max_window_bits=8", enabled(), err);
  ASSERT_TRUE(p) << err;
  EXPECT_EQ(p->server_max_window_bits, 8);
}

TEST(ClientResponse, Rejected) {
  DeflateOptions asked = enabled();
  asked.server_no_context_takeover = true;
  asked.server_max_window_bits = 10;
  const char* ok = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10";
  std::string err;
  ASSERT_TRUE(parse_server_response(ok, asked, err)) << err;
  for (const char* bad : {
           "permessage-deflate; server_max_window_bits=10",   // no snct
           "permessage-deflate; server_no_context_takeover",  // no window
           "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",  // larger
           "x-other",
           "permessage-deflate; server_no_context_takeover; server_max_window_bits=10, x-other",
           "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
           "client_max_window_bits",  // needs a value in a response
           "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
           "client_max_window_bits=8",  // zlib cannot compress with 8
           "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; x=1",
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover; "
           "server_max_window_bits=10",
           "permessage-deflate;;",
       }) {
    err.clear();
    EXPECT_FALSE(parse_server_response(bad, asked, err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

// ---- compression (RFC 7692 §7.2.3) ----

TEST(Deflater, HelloMatchesRfc7692Section7_2_3_1) {
  Deflater d(15, false, 6);
  std::string out;
  ASSERT_TRUE(d.compress("Hello", out));
  EXPECT_EQ(out, bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
}

TEST(Deflater, SecondHelloUsesTheSlidingWindow) {
  // RFC 7692 §7.2.3.2: with context takeover the second "Hello" is a back-reference.
  Deflater d(15, false, 6);
  std::string first, second;
  ASSERT_TRUE(d.compress("Hello", first));
  ASSERT_TRUE(d.compress("Hello", second));
  EXPECT_EQ(second, bytes({0xf2, 0x00, 0x11, 0x00, 0x00}));
  Deflater fresh(15, true, 6);
  std::string a, b;
  ASSERT_TRUE(fresh.compress("Hello", a));
  ASSERT_TRUE(fresh.compress("Hello", b));
  EXPECT_EQ(a, b);
  EXPECT_EQ(b, first);
}

TEST(Inflater, Rfc7692Examples) {
  struct Case {
    const char* name;
    std::string payload;
  } cases[] = {
      {"7.2.3.1 fixed Huffman", bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})},
      {"7.2.3.3 stored block",
       bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})},
      {"7.2.3.4 two blocks",
       bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00})},
      {"7.2.3.5 BFINAL", bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00})},
      {"BFINAL without the empty block", bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})},
  };
  for (const auto& c : cases) {
    Inflater inf(15, false);
    std::string out;
    ASSERT_EQ(inf.decompress(c.payload, out, 1024), Inflater::Result::ok) << c.name;
    EXPECT_EQ(out, "Hello") << c.name;
    // The window survives: the §7.2.3.2 back-reference decodes next.
    std::string next;
    ASSERT_EQ(inf.decompress(bytes({0xf2, 0x00, 0x11, 0x00, 0x00}), next, 1024),
              Inflater::Result::ok)
        << c.name;
    EXPECT_EQ(next, "Hello") << c.name;
  }
}

TEST(Inflater, EmptyMessage) {
  Deflater d(15, false, 6);
  std::string z;
  ASSERT_TRUE(d.compress("", z));
  Inflater inf(15, false);
  std::string out;
  EXPECT_EQ(inf.decompress(z, out, 10), Inflater::Result::ok);
  EXPECT_EQ(out, "");
  EXPECT_EQ(inf.decompress(bytes({0x00}), out, 10), Inflater::Result::ok);  // §7.2.3.6
  EXPECT_EQ(inf.decompress("", out, 10), Inflater::Result::ok);
  EXPECT_EQ(out, "");
}

struct RoundTrip : ::testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(RoundTrip, ManyMessages) {
  auto [no_context, bits] = GetParam();
  Deflater d(bits, no_context, 6);
  Inflater inf(bits, no_context);
  const std::size_t sizes[] = {0, 1, 5, 100, 4096, 70000, 300000};
  unsigned seed = 1;
  for (std::size_t n : sizes) {
    for (const std::string& msg : {random_text(n, seed), random_bytes(n, seed + 100)}) {
      ++seed;
      std::string z;
      ASSERT_TRUE(d.compress(msg, z));
      if (msg.size() >= 4) {
        ASSERT_FALSE(z.size() >= 4 && z.substr(z.size() - 4) == bytes({0, 0, 0xff, 0xff}));
      }
      std::string prefix = "keep";  // decompress appends
      ASSERT_EQ(inf.decompress(z, prefix, msg.size()), Inflater::Result::ok) << n;
      EXPECT_TRUE(prefix == "keep" + msg) << "size " << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Deflate, RoundTrip,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(9, 12, 15)));

TEST(Deflater, ContextTakeoverShrinksRepeatedMessages) {
  const std::string msg = random_text(2000, 7);
  Deflater keep(15, false, 6), reset(15, true, 6);
  std::string a1, a2, b1, b2;
  ASSERT_TRUE(keep.compress(msg, a1));
  ASSERT_TRUE(keep.compress(msg, a2));
  ASSERT_TRUE(reset.compress(msg, b1));
  ASSERT_TRUE(reset.compress(msg, b2));
  EXPECT_LT(a2.size(), a1.size() / 4);
  EXPECT_EQ(b1, b2);
  // A no-context-takeover stream decodes each message on its own.
  Inflater alone(15, true);
  std::string out;
  ASSERT_EQ(alone.decompress(b2, out, msg.size()), Inflater::Result::ok);
  EXPECT_EQ(out, msg);
  // A context-takeover message needs its predecessor.
  Inflater cold(15, false);
  out.clear();
  EXPECT_NE(cold.decompress(a2, out, msg.size()), Inflater::Result::ok);
  EXPECT_TRUE(out.empty());
}

TEST(Deflater, Window8IsRaisedTo9) {
  Deflater d(8, false, 9);
  Inflater inf(8, false);
  const std::string msg = random_text(5000, 3);
  std::string z, out;
  ASSERT_TRUE(d.compress(msg, z));
  ASSERT_EQ(inf.decompress(z, out, msg.size()), Inflater::Result::ok);
  EXPECT_EQ(out, msg);
}

TEST(Inflater, ZipBombStopsAtTheLimit) {
  const std::string zeros(10u << 20, '\0');
  Deflater d(15, true, 9);
  std::string bomb;
  ASSERT_TRUE(d.compress(zeros, bomb));
  ASSERT_LT(bomb.size(), 64u << 10);

  const std::size_t limit = 1u << 20;
  Inflater inf(15, true);
  std::string out;
  EXPECT_EQ(inf.decompress(bomb, out, limit), Inflater::Result::too_big);
  EXPECT_TRUE(out.empty());
  EXPECT_LE(out.capacity(), limit + 1);

  // Exactly at the limit is fine; one byte less is too big.
  std::string exact;
  EXPECT_EQ(inf.decompress(bomb, exact, zeros.size()), Inflater::Result::ok);
  EXPECT_EQ(exact.size(), zeros.size());
  std::string under;
  EXPECT_EQ(inf.decompress(bomb, under, zeros.size() - 1), Inflater::Result::too_big);
  EXPECT_TRUE(under.empty());
}

TEST(Inflater, LimitCountsOnlyWhatThisCallAppends) {
  Deflater d(15, true, 6);
  std::string z;
  ASSERT_TRUE(d.compress("0123456789", z));
  Inflater inf(15, true);
  std::string out(100, 'x');
  EXPECT_EQ(inf.decompress(z, out, 10), Inflater::Result::ok);
  EXPECT_EQ(out.size(), 110u);
  EXPECT_EQ(inf.decompress(z, out, 9), Inflater::Result::too_big);
  EXPECT_EQ(out.size(), 110u);
}

TEST(Inflater, CorruptDataIsAnErrorAndTheStreamRecovers) {
  Inflater inf(15, true);
  std::string out;
  EXPECT_EQ(inf.decompress(bytes({0xff, 0xff, 0xff, 0xff}), out, 1000), Inflater::Result::error);
  EXPECT_TRUE(out.empty());
  // Data after a final block that is not an empty stored block.
  EXPECT_EQ(
      inf.decompress(bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff, 0xff}), out, 1000),
      Inflater::Result::error);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(inf.decompress(bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}), out, 1000),
            Inflater::Result::ok);
  EXPECT_EQ(out, "Hello");
}

TEST(Inflater, InteroperatesWithPlainZlib) {
  // A message compressed by zlib directly (sync flush, tail stripped).
  const std::string msg = random_text(50000, 11);
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 1, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string z(deflateBound(&zs, msg.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(msg.data()));
  zs.avail_in = static_cast<uInt>(msg.size());
  zs.next_out = reinterpret_cast<Bytef*>(z.data());
  zs.avail_out = static_cast<uInt>(z.size());
  ASSERT_EQ(::deflate(&zs, Z_SYNC_FLUSH), Z_OK);
  z.resize(z.size() - zs.avail_out);
  deflateEnd(&zs);
  ASSERT_EQ(z.substr(z.size() - 4), bytes({0, 0, 0xff, 0xff}));
  z.resize(z.size() - 4);
  Inflater inf(15, false);
  std::string out;
  ASSERT_EQ(inf.decompress(z, out, msg.size()), Inflater::Result::ok);
  EXPECT_EQ(out, msg);
}

}  // namespace
}  // namespace ebb::websocket::deflate
