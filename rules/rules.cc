// Owned by the rules implementation; see rules.h.
#include "rules/rules.h"
