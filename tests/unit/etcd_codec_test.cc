// The etcd JSON gateway's traps, each on a response recorded from etcd 3.4.23
// (Debian bookworm's etcd-server) with curl.
#include "agent/store/etcd_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace reactor {
namespace etcd {
namespace {

using nlohmann::json;

constexpr const char* kHeader =
    R"("header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"3","raft_term":"2"})";

std::string WithHeader(const std::string& rest) { return std::string("{") + kHeader + rest + "}"; }

TEST(EtcdCodec, Base64RoundTripsArbitraryBytes) {
  const std::string bytes("\0\xff/reactor/\x80 x", 14);
  auto back = Base64Decode(Base64Encode(bytes));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bytes);
  EXPECT_EQ(Base64Encode("/a"), "L2E=");
  EXPECT_EQ(*Base64Decode("L3AveA=="), "/p/x");
  EXPECT_EQ(*Base64Decode(""), "");
}

TEST(EtcdCodec, Base64RejectsGarbage) {
  EXPECT_FALSE(Base64Decode("L2E").ok());
  EXPECT_FALSE(Base64Decode("L2$=").ok());
  EXPECT_FALSE(Base64Decode("L2E=L2E=").ok());
}

TEST(EtcdCodec, PrefixRangeEndIncrementsTheLastByte) {
  EXPECT_EQ(PrefixRangeEnd("/reactor/"), "/reactor0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff\xff", 3)), "b");
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));  // open above: all keys
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff", 1)), std::string(1, '\0'));
  RangeArgs all = PrefixRange("");
  EXPECT_EQ(all.key, std::string(1, '\0'));
  EXPECT_EQ(*all.range_end, std::string(1, '\0'));
}

TEST(EtcdCodec, RangeWithoutMatchHasNoKvsField) {
  auto r = ParseRangeResponse(WithHeader(""));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->revision, 3);
  EXPECT_TRUE(r->kvs.empty());
  EXPECT_EQ(r->count, 0);
  EXPECT_FALSE(r->more);
}

TEST(EtcdCodec, RangeParsesStringInt64sAndBase64) {
  auto r = ParseRangeResponse(WithHeader(
      R"(,"kvs":[{"key":"L2E=","create_revision":"2","mod_revision":"3","version":"2","value":"Mg==","lease":"9223372036854775807"}],"count":"1","more":true)"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->kvs.size(), 1u);
  const KeyValue& kv = r->kvs[0];
  EXPECT_EQ(kv.key, "/a");
  EXPECT_EQ(kv.value, "2");
  EXPECT_EQ(kv.create_revision, 2);
  EXPECT_EQ(kv.mod_revision, 3);
  EXPECT_EQ(kv.version, 2);
  // 2^63 - 1: a double would round it to 2^63 and overflow.
  EXPECT_EQ(kv.lease, INT64_MAX);
  EXPECT_EQ(r->count, 1);
  EXPECT_TRUE(r->more);
}

TEST(EtcdCodec, EmptyValueIsOmittedAndReadAsEmpty) {
  auto r = ParseRangeResponse(
      WithHeader(R"(,"kvs":[{"key":"L2E=","create_revision":"4","mod_revision":"4","version":"1"}],"count":"1")"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kvs[0].value, "");
  EXPECT_EQ(r->kvs[0].lease, 0);
}

TEST(EtcdCodec, LeaseIdsNearTwoToTheSixtyThreeSurviveExactly) {
  auto g = ParseLeaseGrantResponse(WithHeader(R"(,"ID":"9223372036854775806","TTL":"5")"));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->id, INT64_MAX - 1);
  EXPECT_EQ(g->ttl_seconds, 5);
  EXPECT_EQ(json::parse(LeaseIdRequest(INT64_MAX - 1))["ID"], "9223372036854775806");
  // Recorded: a real lease ID from etcd 3.4.23.
  EXPECT_EQ(ParseLeaseGrantResponse(WithHeader(R"(,"ID":"4111120409883432970","TTL":"2")"))->id,
            int64_t{4111120409883432970});
}

TEST(EtcdCodec, Int64AsADoubleIsRefused) {
  auto r = ParseRangeResponse(WithHeader(R"(,"count":1.5e3)"));
  EXPECT_FALSE(r.ok());
}

TEST(EtcdCodec, FailedTxnHasNoSucceededField) {
  auto r = ParseTxnResponse(WithHeader(""));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(r->revision, 3);
  auto ok =
      ParseTxnResponse(WithHeader(R"(,"succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}])"));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->succeeded);
}

TEST(EtcdCodec, KeepAliveOfAnExpiredLeaseHasNoTtlAndIsNotFound) {
  // Recorded: keepalive of lease 12345, which does not exist.
  const std::string expired = std::string(R"({"result":{)") + kHeader + R"(,"ID":"12345"}})" + "\n";
  auto r = ParseKeepAliveResponse(expired, 12345);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  const std::string alive =
      std::string(R"({"result":{)") + kHeader + R"(,"ID":"4111120409883432976","TTL":"5"}})" + "\n";
  auto a = ParseKeepAliveResponse(alive, 4111120409883432976);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(*a, 5);
}

TEST(EtcdCodec, UnaryErrorBodiesMapToStatusCodes) {
  auto e = ParseGatewayError(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->grpc_code, 5);
  EXPECT_TRUE(ErrorStatus(*e, "x").IsNotFound());
  auto dup = ParseGatewayError(
      R"({"error":"etcdserver: duplicate key given in txn request","message":"etcdserver: duplicate key given in txn request","code":3})");
  EXPECT_TRUE(ErrorStatus(*dup, "x").IsInvalidArgument());
  auto auth = ParseGatewayError(
      R"({"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16})");
  EXPECT_EQ(ErrorStatus(*auth, "x").code(), Status::Code::kUnauthenticated);
  auto noleader = ParseGatewayError(R"({"error":"etcdserver: no leader","message":"etcdserver: no leader","code":14})");
  EXPECT_EQ(ErrorStatus(*noleader, "x").code(), Status::Code::kUnavailable);
  EXPECT_TRUE(IsRetryableOnAnotherMember(*noleader));
  EXPECT_FALSE(IsRetryableOnAnotherMember(*dup));
  EXPECT_FALSE(ParseGatewayError(WithHeader("")));
}

TEST(EtcdCodec, WatchPutEventsHaveNoTypeAndDeleteEventsOnlyKeyAndRevision) {
  // Recorded: a put under a lease, then its delete.
  auto put = ParseWatchLine(
      std::string(R"({"result":{)") + kHeader +
      R"(,"events":[{"kv":{"key":"L3AveA==","create_revision":"4","mod_revision":"4","version":"1","value":"MQ==","lease":"4111120409883432976"}}]}})");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_EQ(put->events.size(), 1u);
  EXPECT_EQ(put->events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(put->events[0].kv.key, "/p/x");
  EXPECT_EQ(put->events[0].kv.value, "1");
  EXPECT_EQ(put->events[0].kv.lease, int64_t{4111120409883432976});
  auto del = ParseWatchLine(std::string(R"({"result":{)") + kHeader +
                            R"(,"events":[{"type":"DELETE","kv":{"key":"L3AveA==","mod_revision":"5"}}]}})");
  ASSERT_TRUE(del.ok());
  ASSERT_EQ(del->events.size(), 1u);
  EXPECT_EQ(del->events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(del->events[0].kv.mod_revision, 5);
  EXPECT_FALSE(del->canceled);
}

TEST(EtcdCodec, CompactedWatchIsCanceledWithCompactRevision) {
  // Recorded: a watch from revision 1 after a compaction at 2 (the header
  // has no revision).
  auto created = ParseWatchLine(std::string(R"({"result":{)") + kHeader + R"(,"created":true}})");
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->created);
  auto m = ParseWatchLine(
      R"({"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","raft_term":"2"},"canceled":true,"compact_revision":"2"}})");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->canceled);
  EXPECT_EQ(m->compact_revision, 2);
  EXPECT_EQ(m->header_revision, 0);
}

TEST(EtcdCodec, StreamErrorLineIsAnError) {
  auto m = ParseWatchLine(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->error);
  EXPECT_EQ(m->error->grpc_code, 14);
  EXPECT_EQ(m->error->message, "etcdserver: no leader");
}

TEST(EtcdCodec, WatchNeverStartsFromZero) {
  // start_revision 0 means "from now": a watch after revision 0 starts at 1.
  json j = json::parse(WatchCreateRequest("/reactor/", 0));
  EXPECT_EQ(j["create_request"]["start_revision"], "1");
  EXPECT_EQ(j["create_request"]["key"], Base64Encode("/reactor/"));
  EXPECT_EQ(j["create_request"]["range_end"], Base64Encode("/reactor0"));
  EXPECT_EQ(json::parse(WatchCreateRequest("/r/", 41))["create_request"]["start_revision"], "42");
}

TEST(EtcdCodec, TxnRequestEncodesComparesAndOps) {
  Txn txn;
  txn.compares = {Compare::Absent("/a"),
                  Compare::ValueIs("/b", "x"),
                  {"/c", Compare::Target::kLease, Compare::Op::kNotEqual, INT64_MAX, {}}};
  txn.success = {Op::Put("/a", "v", 7), Op::DeletePrefix("/p/")};
  txn.failure = {Op::Delete("/a")};
  auto body = TxnRequest(txn);
  ASSERT_TRUE(body.ok());
  json j = json::parse(*body);
  EXPECT_EQ(j["compare"][0], json({{"key", "L2E="}, {"target", "MOD"}, {"result", "EQUAL"}, {"mod_revision", "0"}}));
  EXPECT_EQ(j["compare"][1]["value"], Base64Encode("x"));
  EXPECT_EQ(j["compare"][1]["target"], "VALUE");
  EXPECT_EQ(j["compare"][2]["lease"], "9223372036854775807");
  EXPECT_EQ(j["compare"][2]["result"], "NOT_EQUAL");
  EXPECT_EQ(j["success"][0]["request_put"]["lease"], "7");
  EXPECT_EQ(j["success"][1]["request_delete_range"]["range_end"], Base64Encode("/p0"));
  EXPECT_EQ(j["failure"][0]["request_delete_range"].count("range_end"), 0u);
}

TEST(EtcdCodec, TxnOver128OpsIsRefusedClearly) {
  Txn txn;
  for (int i = 0; i < 129; ++i) txn.success.push_back(Op::Put("/k" + std::to_string(i), "v"));
  auto body = TxnRequest(txn);
  ASSERT_FALSE(body.ok());
  EXPECT_TRUE(body.status().IsInvalidArgument());
  EXPECT_THAT(body.status().message(), ::testing::HasSubstr("128"));
  txn.success.pop_back();
  EXPECT_TRUE(TxnRequest(txn).ok());
}

TEST(EtcdCodec, ValueOverOneMebibyteIsRefusedBeforeSending) {
  Txn txn;
  txn.success.push_back(Op::Put("/big", std::string((1 << 20) + 1, 'x')));
  auto body = TxnRequest(txn);
  ASSERT_FALSE(body.ok());
  EXPECT_THAT(body.status().message(), ::testing::HasSubstr("'/big'"));
  EXPECT_THAT(body.status().message(), ::testing::HasSubstr("1 MiB"));
  txn.success[0].value.resize(1 << 20);
  EXPECT_TRUE(TxnRequest(txn).ok());
}

TEST(EtcdCodec, LeaseTtlIsWholeSecondsRoundedUp) {
  EXPECT_EQ(json::parse(LeaseGrantRequest(Duration(1500)))["TTL"], "2");
  EXPECT_EQ(json::parse(LeaseGrantRequest(Duration(5000)))["TTL"], "5");
  EXPECT_EQ(json::parse(LeaseGrantRequest(Duration(1)))["TTL"], "1");
}

TEST(EtcdCodec, SnapshotLinesCarryBase64Blobs) {
  auto c = ParseSnapshotLine(R"({"result":{"blob":"AAAA","remaining_bytes":"10"}})");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->bytes, std::string(3, '\0'));
  EXPECT_EQ(c->remaining_bytes, 10);
  auto last = ParseSnapshotLine(R"({"result":{"blob":"AAAA"}})");
  EXPECT_EQ(last->remaining_bytes, 0);
}

// Recorded from etcd 3.4.23 with curl: the compaction answers, and the
// turn-taking transaction of periodic compaction (etcd_compaction.h).
constexpr const char* kAlreadyCompacted =
    R"({"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11})";
constexpr const char* kFutureRevision =
    R"({"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11})";

TEST(EtcdCodec, CompactionRequestIsPhysicalOnlyWhenAsked) {
  EXPECT_EQ(json::parse(CompactionRequest(42)), json::parse(R"({"revision":"42","physical":true})"));
  EXPECT_EQ(json::parse(CompactionRequest(9007199254740993, false)), json::parse(R"({"revision":"9007199254740993"})"));
}

TEST(EtcdCodec, CompactionOfAnAlreadyCompactedRevisionIsRecognisedAndAFutureOneIsNot) {
  auto compacted = ParseGatewayError(kAlreadyCompacted);
  ASSERT_TRUE(compacted.has_value());
  EXPECT_TRUE(IsAlreadyCompacted(ErrorStatus(*compacted, "etcd /v3/kv/compaction at m1")));
  auto future = ParseGatewayError(kFutureRevision);
  ASSERT_TRUE(future.has_value());
  const Status st = ErrorStatus(*future, "etcd /v3/kv/compaction at m1");
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_FALSE(IsAlreadyCompacted(st));
  EXPECT_FALSE(IsAlreadyCompacted(Status::Unavailable("required revision has been compacted")));
  // The success answer is a bare header.
  auto rev = ParseHeaderRevision(
      R"({"header":{"cluster_id":"2273782573398864472","member_id":"6482395712621751450","revision":"6","raft_term":"2"}})");
  ASSERT_TRUE(rev.ok());
  EXPECT_EQ(*rev, 6);
}

TEST(EtcdCodec, CompactionClaimComparesTheVersionAndPutsOrReads) {
  json j = json::parse(CompactionClaimRequest("/reactor/etcd/compaction", 3, 1234));
  const std::string key = Base64Encode("/reactor/etcd/compaction");
  ASSERT_EQ(j["compare"].size(), 1u);
  EXPECT_EQ(j["compare"][0],
            json::parse(R"({"key":")" + key + R"(","target":"VERSION","result":"EQUAL","version":"3"})"));
  EXPECT_EQ(j["success"][0]["request_put"]["key"], key);
  EXPECT_EQ(*Base64Decode(j["success"][0]["request_put"]["value"]), "1234");
  EXPECT_EQ(j["failure"][0]["request_range"]["key"], key);
}

TEST(EtcdCodec, CompactionClaimWonLostAndOnAnAbsentKey) {
  auto won = ParseCompactionClaimResponse(
      R"({"header":{"cluster_id":"2273782573398864472","member_id":"6482395712621751450","revision":"7","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"7"}}}]})");
  ASSERT_TRUE(won.ok()) << won.status().ToString();
  EXPECT_TRUE(won->succeeded);
  EXPECT_EQ(won->revision, 7);
  // Lost: no "succeeded"; the failure branch read the key.
  auto lost = ParseCompactionClaimResponse(
      R"({"header":{"cluster_id":"2273782573398864472","member_id":"6482395712621751450","revision":"7","raft_term":"2"},"responses":[{"response_range":{"header":{"revision":"7"},"kvs":[{"key":"L3JlYWN0b3IvZXRjZC9jb21wYWN0aW9u","create_revision":"7","mod_revision":"7","version":"1","value":"Ng=="}],"count":"1"}}]})");
  ASSERT_TRUE(lost.ok()) << lost.status().ToString();
  EXPECT_FALSE(lost->succeeded);
  EXPECT_EQ(lost->version, 1);
  EXPECT_EQ(lost->revision, 7);
  // Lost on a key that is absent (deleted since): no "kvs", version 0.
  auto absent = ParseCompactionClaimResponse(
      R"({"header":{"cluster_id":"2273782573398864472","member_id":"6482395712621751450","revision":"7","raft_term":"2"},"responses":[{"response_range":{"header":{"revision":"7"}}}]})");
  ASSERT_TRUE(absent.ok()) << absent.status().ToString();
  EXPECT_FALSE(absent->succeeded);
  EXPECT_EQ(absent->version, 0);
  EXPECT_FALSE(ParseCompactionClaimResponse(R"({"header":{"revision":"7"}})").ok());
}

}  // namespace
}  // namespace etcd
}  // namespace reactor
