// Compiled by CTest (tests/CMakeLists.txt, FloatContract.* cases) with a forbidden float flag:
// the guards of src/base/float_contract.h, reached through a base header as in every core
// translation unit, must stop the build with a message naming the flag.
#include "base/error.h"

int main() {
  return 0;
}
