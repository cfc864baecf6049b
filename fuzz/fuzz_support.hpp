// What the fuzz targets share: an invariant check that aborts (a libFuzzer finding) in every
// build type, and a reader for the targets' text inputs.
//
// Inputs are text so that seed files can be written and read by hand: a target takes some
// header lines (numbers, words) and then a free-form rest (an HTTP body, a TOML file). Numbers
// are read leniently: any line is some number, and decimal overflow wraps, so every int64 can
// be reached and nothing is ever rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace billingd::fuzz {

// Unlike assert(), never compiled out.
#define FUZZ_CHECK(condition, what)                                                         \
    do {                                                                                    \
        if (!(condition)) ::billingd::fuzz::violated(#condition, what, __FILE__, __LINE__); \
    } while (false)

[[noreturn]] inline void violated(const char* condition, std::string_view what, const char* file,
                                  int line) {
    std::fprintf(stderr, "INVARIANT VIOLATED at %s:%d: %s\n  (%.*s)\n", file, line, condition,
                 static_cast<int>(what.size()), what.data());
    std::abort();
}

class text_input {
  public:
    text_input(const std::uint8_t* data, std::size_t size)
        : rest_(reinterpret_cast<const char*>(data), size) {}

    // The next line without its '\n' ("" once the input is used up).
    std::string_view line() {
        const auto end = rest_.find('\n');
        std::string_view out = rest_.substr(0, end);
        rest_.remove_prefix(end == std::string_view::npos ? rest_.size() : end + 1);
        return out;
    }

    // The next line as a decimal number: an optional '-', then digits; other bytes are
    // skipped; wraps modulo 2^64 (so "4294967296" and "-9223372036854775808" both arrive).
    std::int64_t number() { return to_number(line()); }

    // Everything not read yet.
    std::string_view rest() const { return rest_; }
    bool empty() const { return rest_.empty(); }

    static std::int64_t to_number(std::string_view text) {
        std::uint64_t value = 0;
        bool negative = false;
        for (std::size_t i = 0; i < text.size(); ++i) {
            const char c = text[i];
            if (c == '-' && value == 0) negative = true;
            if (c >= '0' && c <= '9') value = value * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (negative) value = ~value + 1;
        return static_cast<std::int64_t>(value);
    }

  private:
    std::string_view rest_;
};

// Whole words of a header line, e.g. "200 1 0" -> 200, 1, 0. Missing words read as 0.
class words {
  public:
    explicit words(std::string_view text) : rest_(text) {}
    std::string_view next() {
        while (!rest_.empty() && rest_.front() == ' ') rest_.remove_prefix(1);
        const auto end = rest_.find(' ');
        std::string_view out = rest_.substr(0, end);
        rest_.remove_prefix(end == std::string_view::npos ? rest_.size() : end);
        return out;
    }
    std::int64_t number() { return text_input::to_number(next()); }

  private:
    std::string_view rest_;
};

inline bool contains(std::string_view text, std::string_view needle) {
    return !needle.empty() && text.find(needle) != std::string_view::npos;
}

// Well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
inline bool valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            length = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            length = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            length = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + length > text.size()) return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto d = static_cast<unsigned char>(text[i + k]);
            if ((d & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (d & 0x3F);
        }
        static constexpr std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < smallest[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += length;
    }
    return true;
}

}  // namespace billingd::fuzz
