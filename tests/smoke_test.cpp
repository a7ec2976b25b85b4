#include <gtest/gtest.h>
#include "base/fp16.h"
TEST(Fp16, OneRoundTrips) { EXPECT_EQ(xtile::fp32_to_fp16(1.0f), 0x3c00); }
