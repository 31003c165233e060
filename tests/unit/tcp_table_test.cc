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

}  // namespace
}  // namespace reactor
