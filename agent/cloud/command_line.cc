#include "agent/cloud/command_line.h"

namespace reactor {

namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string Column(size_t index) { return "column " + std::to_string(index + 1); }

}  // namespace

Result<std::vector<std::string>> SplitCommandLine(std::string_view command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // distinguishes an empty quoted word from no word
  size_t i = 0;
  const size_t n = command.size();
  while (i < n) {
    const char c = command[i];
    if (IsBlank(c)) {
      if (in_word) {
        words.push_back(std::move(word));
        word.clear();
        in_word = false;
      }
      ++i;
    } else if (c == '\'') {
      const size_t close = command.find('\'', i + 1);
      if (close == std::string_view::npos) {
        return Status::InvalidArgument("unbalanced single quote at " + Column(i) + " of the command");
      }
      word.append(command.substr(i + 1, close - i - 1));
      in_word = true;
      i = close + 1;
    } else if (c == '"') {
      const size_t open = i;
      ++i;
      bool closed = false;
      while (i < n) {
        const char d = command[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < n &&
            (command[i + 1] == '"' || command[i + 1] == '\\' || command[i + 1] == '$' || command[i + 1] == '`')) {
          word.push_back(command[i + 1]);
          i += 2;
          continue;
        }
        word.push_back(d);
        ++i;
      }
      if (!closed) {
        return Status::InvalidArgument("unbalanced double quote at " + Column(open) + " of the command");
      }
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= n) {
        return Status::InvalidArgument("trailing backslash at " + Column(i) + " of the command");
      }
      if (command[i + 1] != '\n') {
        word.push_back(command[i + 1]);
        in_word = true;
      }
      i += 2;
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return Status::InvalidArgument("the command is empty");
  return words;
}

std::string ExpandVariables(std::string_view text, const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const size_t close = text.find('}', i + 2);
      if (close != std::string_view::npos) {
        const std::string name(text.substr(i + 2, close - i - 2));
        auto it = vars.find(name);
        if (it != vars.end()) {
          out.append(it->second);
          i = close + 1;
          continue;
        }
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

Result<std::vector<std::string>> BuildArgv(std::string_view command, const std::map<std::string, std::string>& vars) {
  auto words = SplitCommandLine(command);
  if (!words.ok()) return words.status();
  for (std::string& w : *words) w = ExpandVariables(w, vars);
  return words;
}

}  // namespace reactor
