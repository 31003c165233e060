#include "agent/metrics/tcp_table.h"

#include <gtest/gtest.h>

namespace reactor {
namespace {

// Captured from a real /proc/net/tcp: nginx (127.0.0.1:8080 listening) with a
// connection to a backend on 127.0.0.1:30001 and one closing.
const char* kTcp =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
    "   1: 0100007F:C350 0100007F:7531 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
    "   2: 0100007F:C351 0100007F:7531 01 00000000:00000000 00:00000000 00000000     0        0 3 1\n"
    "   3: 0100007F:C352 0100007F:7531 06 00000000:00000000 00:00000000 00000000     0        0 4 1\n"
    "garbage line\n";

const char* kTcp6 =
    "  sl  local_address                         remote_address                        st\n"
    "   0: 0000000000000000FFFF00000100007F:1F91 0000000000000000FFFF00000100007F:7531 01 0\n"
    "   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0\n";

TEST(TcpTable, ParsesIpv4ListenAndEstablished) {
  auto t = ParseProcNetTcp(kTcp);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].local_ip, "127.0.0.1");
  EXPECT_EQ(t[0].local_port, 8080);
  EXPECT_EQ(t[0].state, kTcpListen);
  EXPECT_EQ(t[1].remote_port, 30001);
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001"), 2);  // TIME_WAIT not counted
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30002"), 0);
}

TEST(TcpTable, ParsesIpv6AndMappedIpv4) {
  auto t = ParseProcNetTcp(kTcp6);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].remote_ip, "127.0.0.1");
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001"), 1);
  EXPECT_EQ(t[1].local_ip, "::");
  EXPECT_EQ(t[1].local_port, 80);
}

TEST(TcpTable, ReadsTheSocketInode) {
  auto t = ParseProcNetTcp(kTcp);
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].inode, 1u);
  EXPECT_EQ(t[2].inode, 3u);
  // Lines without an inode column (kTcp6 is cut short) read as 0.
  EXPECT_EQ(ParseProcNetTcp(kTcp6)[0].inode, 0u);
}

TEST(TcpTable, ExcludedSocketsAreNotCounted) {
  auto t = ParseProcNetTcp(kTcp);
  ExcludedSockets probes;
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001", probes), 2);
  probes.Add(3);  // the prober's connection from port 0xC351
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001", probes), 1);
  probes.Add(2);
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001", probes), 0);
  probes.Remove(3);
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001", probes), 1);
  EXPECT_EQ(probes.size(), 1u);
}

TEST(TcpTable, EstablishedCountsGivesCountEstablishedToForEveryAddress) {
  auto t = ParseProcNetTcp(kTcp);
  auto t6 = ParseProcNetTcp(kTcp6);
  t.insert(t.end(), t6.begin(), t6.end());
  ExcludedSockets probes;
  probes.Add(3);
  const EstablishedCounts counts(t, probes);
  for (const char* addr : {"127.0.0.1:30001", "127.0.0.1:30002", "127.0.0.1:8080", "::1:80", "nocolon", "127.0.0.1:"}) {
    EXPECT_EQ(counts.To(addr), CountEstablishedTo(t, addr, probes)) << addr;
  }
  EXPECT_EQ(counts.To("127.0.0.1:30001"), 2);  // one in tcp (the other is a probe's), one in tcp6
}

TEST(TcpTable, ProcessWideProbeSocketsAreSkippedByDefault) {
  auto t = ParseProcNetTcp(kTcp);
  const uint64_t inode = 2;
  ASSERT_FALSE(ProbeSockets().Contains(inode));
  ProbeSockets().Add(inode);
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001"), 1);
  ProbeSockets().Remove(inode);
  EXPECT_EQ(CountEstablishedTo(t, "127.0.0.1:30001"), 2);
}

TEST(TcpTable, SkipsMalformedAddresses) {
  const char* text =
      "  sl  local_address rem_address   st\n"
      "   0: 0100007G:1F90 0100007F:7531 01\n"  // not hex
      "   1: 0100007F:1F90 0100007F 01\n"       // no port
      "   2: 0100007F:1F90 0100007F:7531\n"     // no state
      "   3: 0100007F:1F90 0100007F:7531 01\n";
  auto t = ParseProcNetTcp(text);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].remote_port, 30001);
}

}  // namespace
}  // namespace reactor
