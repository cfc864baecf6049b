// billingctl output: aligned text tables for people, JSON for scripts.
//
// JSON is the rows' representation of operations/json.hpp (the API's too): keys are the
// column names, instants UNIX seconds (UTC), absent values null. Tables show
// amounts with their currency and instants in the subscription's local time zone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "operations/format.hpp"
#include "operations/json.hpp"
#include "storage/records.hpp"

namespace billingd::ctl {

class table {
  public:
    explicit table(std::vector<std::string> headers);
    void add(std::vector<std::string> row);
    bool empty() const { return rows_.empty(); }
    // Prints the header and rows with columns padded to their widest cell (display width);
    // "(none)" if empty. With --csv: CSV with a header row.
    void print() const;

  private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text in terminal columns, like wcwidth(3) but independent of the
// locale: Hangul syllables, CJK and emoji count 2, combining marks and joiners 0.
std::size_t text_length(std::string_view utf8);
int code_point_width(char32_t c);

// --csv: table::print() writes RFC 4180 CSV (header row, CRLF) instead of aligned columns.
void set_csv_output(bool on);
bool csv_output_enabled();
void print_csv_row(const std::vector<std::string>& cells);

// Lists are cut at --limit rows; when more rows follow, says so on stderr with the --after
// value that continues the list (stdout stays a clean table, CSV or JSON).
void note_cut(std::int64_t limit, std::int64_t last_id, std::string_view what);

// "9,900 KRW", "2024-01-31 10:00 KST": shared with the operations' messages.
using operations::format_amount;
using operations::format_local;
std::string or_dash(const std::optional<std::string>& s);
std::string or_dash(const std::optional<std::int64_t>& v);

// The rows' JSON, the same as the HTTP API's (operations/json.hpp).
using operations::to_json;

void print_json(const nlohmann::json& j);

// Time zone of a subscription by id, looked up once ("UTC" when the row is gone).
class zone_cache {
  public:
    explicit zone_cache(std::function<std::optional<std::string>(std::int64_t)> lookup)
        : lookup_(std::move(lookup)) {}
    const std::string& of(std::int64_t subscription_id);

  private:
    std::function<std::optional<std::string>(std::int64_t)> lookup_;
    std::map<std::int64_t, std::string> zones_;
};

}  // namespace billingd::ctl
