// The reconciliation lookup: classify_find_all_page on each page of GET /payments/findAll,
// then reduce_lookup over the payments of every page, as http_client.cpp's find_all does.
//
// Input: up to 4 pages separated by a line "---"; each page is
// "<http_status> <request_written> <transport_error> <tls_refused>\n<body>".
// Invariants: a page is `found` only from HTTP 200 + code 0 + a payment list, and then holds
// exactly the answer's payments; `not_found` only from HTTP 404 with PortOne's envelope; the
// verdict is paid exactly when some payment has status "paid" (and settles on it), declined
// only when every payment failed or was cancelled (settling on the latest), not_found only
// when there is no payment at all; nothing throws.
#include <algorithm>
#include <exception>
#include <vector>

#include "gateway_oracle.hpp"

namespace gw = billingd::gateway;
namespace wire = billingd::gateway::wire;
using billingd::fuzz::oracle;
using gw::outcome;

namespace {

constexpr std::size_t max_pages = 4;

std::vector<std::string_view> split_pages(std::string_view text) {
    std::vector<std::string_view> pages;
    constexpr std::string_view separator = "\n---\n";
    while (pages.size() + 1 < max_pages) {
        const auto at = text.find(separator);
        if (at == std::string_view::npos) break;
        pages.push_back(text.substr(0, at));
        text.remove_prefix(at + separator.size());
    }
    pages.push_back(text);
    return pages;
}

// One page; returns the classified page after checking it against the answer.
wire::find_all_page check_page(const wire::http_answer& answer) {
    wire::find_all_page r;
    try {
        r = wire::classify_find_all_page("GET /payments/findAll/sub1-p3 page=1", answer);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    } catch (...) {
        FUZZ_CHECK(false, "classify_find_all_page threw");
    }
    const gw::exchange& x = r.journal;
    const oracle o(answer.body);
    const bool broken = billingd::fuzz::transport_failed(answer);
    billingd::fuzz::check_raw(x.raw, answer.body);
    billingd::fuzz::check_code(x, o);
    FUZZ_CHECK(x.result == outcome::found || x.result == outcome::not_found ||
                   x.result == outcome::config_error || x.result == outcome::unknown,
               "a findAll page classified as a charge outcome");
    FUZZ_CHECK((x.result == outcome::found) == r.page.has_value(), "found iff a page");
    if (broken)
        FUZZ_CHECK(x.result == (billingd::fuzz::tls_refused(answer) ? outcome::config_error
                                                                    : outcome::unknown),
                   "no complete answer: config_error for a refused certificate, else unknown");
    if (x.result == outcome::not_found)
        FUZZ_CHECK(!broken && answer.http_status == 404 && o.envelope,
                   "not_found from something other than a 404 with PortOne's envelope");
    if (x.result == outcome::config_error)
        FUZZ_CHECK(broken ? billingd::fuzz::tls_refused(answer) : answer.http_status == 401,
                   "config_error from something but 401 or a refused certificate");
    if (r.page) {
        FUZZ_CHECK(!broken && answer.http_status == 200 && o.code_zero() && o.response_object,
                   "a page from something other than 200 + code 0 + an object");
        const auto list = o.response().find("list");
        FUZZ_CHECK(
            list != o.response().end() && list->is_array() && list->size() == r.page->list.size(),
            "the page does not hold exactly the answer's payments");
        for (std::size_t i = 0; i < list->size(); ++i)
            billingd::fuzz::check_payment_matches(r.page->list[i], (*list)[i], o.lossy);
        FUZZ_CHECK(billingd::fuzz::same_number(o.response(), "next", r.page->next),
                   "next is not the answer's");
    }
    return r;
}

bool failed_or_cancelled(const gw::payment& p) {
    return p.status == "failed" || p.status == "cancelled";
}

void check_reduced(const gw::lookup_result& r, const std::vector<gw::payment>& payments) {
    FUZZ_CHECK(r.journal.result == r.verdict, "journal result is not the verdict");
    FUZZ_CHECK(r.payments.size() == payments.size(), "payments lost or added");
    const auto paid = std::find_if(payments.begin(), payments.end(),
                                   [](const gw::payment& p) { return p.status == "paid"; });
    const bool any_paid = paid != payments.end();
    const bool all_failed = std::all_of(payments.begin(), payments.end(), failed_or_cancelled);
    FUZZ_CHECK((r.verdict == outcome::paid) == any_paid,
               "verdict paid iff some payment has status paid");
    FUZZ_CHECK((r.verdict == outcome::not_found) == payments.empty(),
               "verdict not_found iff there is no payment");
    switch (r.verdict) {
        case outcome::paid:
            FUZZ_CHECK(
                r.settled && r.settled->status == "paid" && r.settled->imp_uid == paid->imp_uid,
                "paid is settled by the first paid record");
            break;
        case outcome::declined: {
            FUZZ_CHECK(!payments.empty() && all_failed, "declined with a live payment");
            FUZZ_CHECK(r.settled && failed_or_cancelled(*r.settled), "declined settled on what");
            auto when = [](const gw::payment& p) {
                return std::pair{std::max(p.failed_at, p.cancelled_at), p.started_at};
            };
            for (const auto& p : payments)
                FUZZ_CHECK(!(when(p) > when(*r.settled)), "declined not settled by the latest");
            break;
        }
        case outcome::unknown:
            FUZZ_CHECK(!any_paid && !all_failed, "unknown although the records settle it");
            FUZZ_CHECK(!r.settled, "unknown with a settling record");
            break;
        case outcome::not_found:
            FUZZ_CHECK(!r.settled, "not_found with a settling record");
            break;
        default:
            FUZZ_CHECK(false, "reduce_lookup gave a verdict it never gives");
    }
    if (r.settled) FUZZ_CHECK(r.journal.imp_uid == r.settled->imp_uid, "journal imp_uid");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<gw::payment> payments;
    gw::exchange last;
    std::int64_t page_number = 1;
    for (auto page_text : split_pages(text)) {
        billingd::fuzz::text_input in(reinterpret_cast<const std::uint8_t*>(page_text.data()),
                                      page_text.size());
        const auto header = in.line();
        const auto answer = billingd::fuzz::read_answer(header, in.rest());
        auto page = check_page(answer);
        if (page.journal.result != outcome::found) return 0;  // find_all stops with that
        for (auto& p : page.page->list) payments.push_back(std::move(p));
        last = std::move(page.journal);
        if (page.page->next <= page_number) break;
        page_number = page.page->next;
    }
    gw::lookup_result r;
    try {
        r = wire::reduce_lookup(last, payments);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    check_reduced(r, payments);
    return 0;
}
