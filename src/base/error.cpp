#include "base/error.h"

namespace xtile {

Error::~Error() = default;

}  // namespace xtile
