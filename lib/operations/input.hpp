// Checks of the values an operator or the merchant's application hands an operation, and how
// their messages name a field.
//
// Every message names the field the way the caller's interface does: billingctl by its option
// ("--customer-uid: must be 1 to 80 characters, got 81"), the API by its JSON member
// ("customer_uid: must be 1 to 80 characters, got 81"). The rest of the text is the same.
// Refusals are operations::error of kind `invalid` with the field set (operation.hpp).
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace billingd::operations {

// How the caller names input fields in messages.
enum class naming {
    json,     // the API: the JSON member, "customer_uid"
    options,  // billingctl: the option, "--customer-uid"
};

// The label of `field` (a JSON member name of the API, e.g. "order_name") for `style`
// ("--name" for billingctl). A field without an option is named as in JSON.
std::string label(naming style, std::string_view field);

// Throws error(invalid, "invalid-text") naming label(style, field) unless `value` is valid
// UTF-8 of min..max characters without control characters (C0 including CR, LF and TAB; DEL;
// C1). `trimmed` also refuses white space at either end (identifiers such as a customer_uid).
void check_text(naming style, std::string_view field, std::string_view value, std::size_t min,
                std::size_t max, bool trimmed = false);

// The same, naming the field by `label` as it is ("--amount").
void check_labelled_text(std::string_view label, std::string_view value, std::size_t min,
                         std::size_t max, bool trimmed = false);

// `value` quoted for an error message: control characters and bytes that are not UTF-8 are
// shown as \xNN, so a hostile value cannot move a terminal's cursor or hide itself.
std::string shown(std::string_view value);

// Throws error(invalid, type, "<label>: <message>", field).
[[noreturn]] void refuse_field(naming style, std::string_view field, std::string type,
                               const std::string& message);

}  // namespace billingd::operations
