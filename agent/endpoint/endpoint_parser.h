// Endpoint INI files (SPEC.md §4): parse and validate them into an
// EndpointConfig, write them back, and read or change one key.
//
// Every value that can reach an nginx config (url host and path, static
// hosts, redirect, certificate paths, health path) is checked against a
// character whitelist, so no input can inject nginx directives. Values that
// reach a process or container (command, environment) are never passed
// through a shell; they must not contain NUL or newlines.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "agent/common/status.h"
#include "agent/endpoint/endpoint_config.h"

namespace reactor {

/// A section's keys and their values as text, in canonical order.
using EndpointSection = std::vector<std::pair<std::string, std::string>>;

/// True iff `name` matches [a-z0-9][a-z0-9_-]{0,62}.
bool IsValidEndpointName(const std::string& name);

/// Parses and validates an endpoint INI text. Keys not given keep the
/// defaults of endpoint_config.h. Every problem is reported, one a line:
///   "line 7: [scaling] max_instances: 0 is less than min_instances (1)"
///   "line 3: [endpoint] url: 'ftp' is not http or https"
///   "[cloud:process] command: required when cloud = process"
/// (the "line N: " prefix is left out when no single line is to blame).
/// Unknown sections and keys, and duplicate keys, are errors.
/// Returns InvalidArgument on any problem; nothing is partially applied.
Result<EndpointConfig> ParseEndpointIni(const std::string& name, const std::string& text);

/// For a stored endpoint whose text no longer validates (e.g. after an
/// upgrade made the rules stricter): the config that results from dropping
/// every key that is in error, so what remains is fully validated. For
/// serving what the agent cannot read, never for accepting user input.
Result<EndpointConfig> ParseEndpointIniLenient(const std::string& name, const std::string& text);

/// Canonical INI text with every section and key, in a fixed order.
/// ParseEndpointIni(c.name, SerializeEndpointIni(c)) gives back `c`.
std::string SerializeEndpointIni(const EndpointConfig& config);

/// The section names of an endpoint file, in canonical order:
/// endpoint, scaling, health, cloud:process, cloud:docker, loadbalancer:nginx.
const std::vector<std::string>& EndpointSectionNames();

/// Every section with its keys and values, in canonical order.
std::vector<std::pair<std::string, EndpointSection>> EndpointSections(const EndpointConfig& config);

/// One section's keys and values; InvalidArgument for an unknown section.
Result<EndpointSection> EndpointSectionKeys(const EndpointConfig& config, const std::string& section);

/// One key's value as text; InvalidArgument naming an unknown section or key.
Result<std::string> GetEndpointKey(const EndpointConfig& config, const std::string& section, const std::string& key);

/// `current` with one key set to `value`, validated exactly as a file would
/// be (the whole config is re-checked, so e.g. lowering max_instances below
/// min_instances fails). Leading/trailing whitespace of each line of `value`
/// is ignored; an empty value means the key's empty form (for keys that
/// have one). Unknown section or key → InvalidArgument naming them.
Result<EndpointConfig> SetEndpointKey(const EndpointConfig& current, const std::string& section, const std::string& key,
                                      const std::string& value);

/// Like SetEndpointKey, but edits the endpoint's INI text as stored, so the
/// keys the user left out stay out and keep following their defaults (e.g.
/// `set web health interval 300ms` when timeout was never written: timeout
/// follows to 300ms instead of conflicting). Returns the validated config
/// and the new text (comments are not kept).
Result<std::pair<EndpointConfig, std::string>> SetEndpointIniKey(const std::string& name, const std::string& ini,
                                                                 const std::string& section, const std::string& key,
                                                                 const std::string& value);

}  // namespace reactor
