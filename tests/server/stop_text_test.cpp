// Stop sequences over streamed text: released as soon as it cannot start a stop
// sequence, cut before the first one found, across token boundaries.
#include <gtest/gtest.h>

#include "server/stop_text.h"

namespace toy::server {
namespace {

TEST(StopText, NoStopsReleasesEverything) {
  StopText s({});
  EXPECT_EQ(s.push("hello"), "hello");
  EXPECT_EQ(s.flush(), "");
}

TEST(StopText, HoldsAPossibleStartAndReleasesItWhenItDiverges) {
  StopText s({"END"});
  EXPECT_EQ(s.push("abc E"), "abc ");
  EXPECT_EQ(s.push("N"), "");
  EXPECT_EQ(s.push("x"), "ENx");
  EXPECT_FALSE(s.matched());
  EXPECT_EQ(s.push("E"), "");
  EXPECT_EQ(s.flush(), "E");  // the end of generation releases the tail
}

TEST(StopText, StopAcrossPiecesCutsBeforeIt) {
  StopText s({"Lily", "\n\n"});
  EXPECT_EQ(s.push("named L"), "named ");
  EXPECT_EQ(s.push("il"), "");
  EXPECT_EQ(s.push("y. She"), "");
  EXPECT_TRUE(s.matched());
  EXPECT_EQ(s.push("more"), "");
  EXPECT_EQ(s.flush(), "");
}

TEST(StopText, EarliestOfSeveralStopsWins) {
  StopText s({"world", "lo w"});
  EXPECT_EQ(s.push("hello world"), "hel");
  EXPECT_TRUE(s.matched());
}

TEST(StopText, StopInsideOnePiece) {
  StopText s({"\n"});
  EXPECT_EQ(s.push("one\ntwo"), "one");
  EXPECT_TRUE(s.matched());
}

TEST(StopText, MultibyteStopIsNotSplit) {
  StopText s({"é!"});
  // "é" is two bytes: the held tail starts at its first byte.
  EXPECT_EQ(s.push("caf\xc3"), "caf");
  EXPECT_EQ(s.push("\xa9"), "");
  EXPECT_EQ(s.push("?"), "\xc3\xa9?");
}

}  // namespace
}  // namespace toy::server
