// Turning an endpoint's `command` into an argv without a shell: ${VAR}
// expansion and word splitting with simple quoting. Pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/common/status.h"

namespace reactor {

/// Splits `command` into words the way a POSIX shell would for a simple
/// command, with no expansion, globbing, redirection or operators:
/// - unquoted blanks (space, tab, newline) separate words;
/// - '...' is literal up to the next single quote;
/// - "..." is literal except that \" \\ \$ and \` lose their backslash;
/// - outside quotes a backslash makes the next character literal
///   (backslash-newline is removed);
/// - '' and "" make an empty word.
/// Unbalanced quotes, a trailing backslash, or no words at all are
/// InvalidArgument, with the 1-based column where the problem starts.
Result<std::vector<std::string>> SplitCommandLine(std::string_view command);

/// Replaces every `${NAME}` whose NAME is a key of `vars` with its value.
/// Unknown `${...}`, a bare `$NAME` and an unterminated `${` are left as
/// written (a program such as `sh -c` may expand them from its environment).
/// Expansion happens once: values are not scanned again.
std::string ExpandVariables(std::string_view text, const std::map<std::string, std::string>& vars);

/// Splits `command`, then expands `vars` in each word, so a value never
/// splits into several words.
Result<std::vector<std::string>> BuildArgv(std::string_view command, const std::map<std::string, std::string>& vars);

}  // namespace reactor
