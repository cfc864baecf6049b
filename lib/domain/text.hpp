// Checks of text that reaches PortOne, the journal or a terminal: valid UTF-8, no control
// characters, lengths in characters (PortOne and the schema count characters, not bytes).
// Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace billingd::domain {

bool is_valid_utf8(std::string_view text);

// Code points in valid UTF-8 text (undefined for invalid text: check is_valid_utf8 first).
std::size_t utf8_length(std::string_view text);

// At most `max_bytes` of `text`, cut back to the start of a UTF-8 sequence so that a valid
// text stays valid (journal rows, event payloads, delivery errors).
std::string_view cut_utf8(std::string_view text, std::size_t max_bytes);

// True when `text` holds a C0 control character or DEL (CR, LF, TAB, NUL, ...).
bool has_control_character(std::string_view text);

// An error text when `value` is not valid UTF-8 of min..max characters without control
// characters; `what` names the field in the message.
std::optional<std::string> check_text(std::string_view what, std::string_view value,
                                      std::size_t min, std::size_t max);

}  // namespace billingd::domain
