#include <doctest/doctest.h>

#include <set>
#include <string>

#include "domain/merchant_uid.hpp"
#include "domain/retry_policy.hpp"
#include "domain/states.hpp"
#include "domain/text.hpp"

using namespace billingd::domain;
using std::chrono::days;
using std::chrono::seconds;

TEST_CASE("merchant_uid is the same for every retry of a period and distinct across periods") {
    CHECK(make_merchant_uid("acme", "0123456789abcdef", 3) ==
          std::optional<std::string>{"acme-0123456789abcdef-p3"});
    CHECK(make_merchant_uid("acme", "0123456789abcdef", 3) ==
          make_merchant_uid("acme", "0123456789abcdef", 3));

    // Keys of different lengths and periods never collide: the fields are delimited.
    std::set<std::string> seen;
    for (const char* key : {"aaaaaaaa", "aaaaaaaa1", "aaaaaaaa12", "baaaaaaa"})
        for (std::int64_t period = 0; period < 150; ++period) {
            auto uid = make_merchant_uid("bd_1", key, period);
            REQUIRE(uid);
            CHECK(is_valid_merchant_uid(*uid));
            CHECK(seen.insert(*uid).second);
        }
}

TEST_CASE("two databases on one PortOne account never mint the same merchant_uid") {
    // Same subscription id and period, different install ids or keys: different uids.
    CHECK(make_merchant_uid("a1b2c3d4", "0000000000000001", 0) !=
          make_merchant_uid("e5f6a7b8", "0000000000000001", 0));
    CHECK(make_merchant_uid("prod", "0000000000000001", 0) !=
          make_merchant_uid("prod", "0000000000000002", 0));
}

TEST_CASE("merchant_uid never exceeds 40 characters of [A-Za-z0-9_-]") {
    auto longest = make_merchant_uid("abcdefghijkl", "0123456789abcdef", max_period_index);
    REQUIRE(longest);
    CHECK(longest->size() <= 40);
    CHECK_FALSE(make_merchant_uid("abcdefghijkl", "0123456789abcdef", max_period_index + 1));
    CHECK_FALSE(make_merchant_uid("a b", "0123456789abcdef", 1));
    CHECK_FALSE(make_merchant_uid("abcdefghijklm", "0123456789abcdef", 1));  // 13-char id
    CHECK_FALSE(make_merchant_uid("", "0123456789abcdef", 1));
    CHECK_FALSE(make_merchant_uid("x", "0123456789abcdef", -1));
    CHECK_FALSE(make_merchant_uid("x", "short", 1));
    CHECK_FALSE(make_merchant_uid("x", "0123456789ABCDEF", 1));
    CHECK_FALSE(make_merchant_uid("x", "0123456789abcdef0", 1));
    CHECK(check_merchant_uid_prefix("shop:1"));
    CHECK_FALSE(check_merchant_uid_prefix("shop_1-a"));
    CHECK_FALSE(is_valid_merchant_uid(""));
    CHECK_FALSE(is_valid_merchant_uid(std::string(41, 'a')));
    CHECK(is_valid_merchant_uid(std::string(40, 'a')));
}

TEST_CASE("charge states round-trip through their names") {
    for (auto s : {charge_state::scheduled, charge_state::sending, charge_state::paid,
                   charge_state::declined, charge_state::unknown, charge_state::reconciling,
                   charge_state::retry_wait, charge_state::parked, charge_state::skipped,
                   charge_state::canceled})
        CHECK(parse_charge_state(to_string(s)) == s);
    CHECK_FALSE(parse_charge_state("failed"));
    CHECK(parse_subscription_status("past_due") == subscription_status::past_due);
    CHECK_FALSE(parse_subscription_status("deleted"));
}

TEST_CASE("an unknown charge cannot be resent or declined without reconciliation") {
    struct row {
        charge_state from, to;
        bool allowed;
    };
    const row table[] = {
        {charge_state::scheduled, charge_state::sending, true},
        {charge_state::sending, charge_state::paid, true},
        {charge_state::sending, charge_state::unknown, true},
        {charge_state::sending, charge_state::retry_wait, true},
        {charge_state::sending, charge_state::sending, false},
        {charge_state::unknown, charge_state::sending, false},
        {charge_state::unknown, charge_state::retry_wait, false},
        {charge_state::unknown, charge_state::declined, false},
        {charge_state::unknown, charge_state::reconciling, true},
        {charge_state::reconciling, charge_state::retry_wait, true},
        {charge_state::reconciling, charge_state::sending, false},
        {charge_state::reconciling, charge_state::paid, true},
        {charge_state::declined, charge_state::sending, true},
        {charge_state::retry_wait, charge_state::sending, true},
        {charge_state::paid, charge_state::sending, false},
        {charge_state::paid, charge_state::canceled, false},
        {charge_state::skipped, charge_state::sending, false},
        {charge_state::canceled, charge_state::sending, false},
        {charge_state::parked, charge_state::paid, true},
        {charge_state::parked, charge_state::sending, false},
        {charge_state::parked, charge_state::retry_wait, true},
    };
    for (const auto& r : table) {
        CAPTURE(to_string(r.from));
        CAPTURE(to_string(r.to));
        CHECK(charge_transition_allowed(r.from, r.to) == r.allowed);
    }
    CHECK(is_in_doubt(charge_state::sending));
    CHECK(is_in_doubt(charge_state::unknown));
    CHECK(is_in_doubt(charge_state::reconciling));
    CHECK_FALSE(is_in_doubt(charge_state::declined));
}

TEST_CASE("subscription life cycle transitions") {
    using enum subscription_status;
    CHECK(subscription_transition_allowed(trialing, active));
    CHECK(subscription_transition_allowed(active, past_due));
    CHECK(subscription_transition_allowed(past_due, active));
    CHECK(subscription_transition_allowed(past_due, unpaid));
    CHECK(subscription_transition_allowed(paused, active));
    CHECK_FALSE(subscription_transition_allowed(canceled, active));
    CHECK_FALSE(subscription_transition_allowed(ended, active));
    CHECK_FALSE(subscription_transition_allowed(active, active));
    CHECK(is_billable(past_due));
    CHECK_FALSE(is_billable(paused));
}

TEST_CASE("transient retries back off exponentially with full jitter up to a cap") {
    transient_policy p;
    CHECK(transient_delay(p, 1, 0.0) == seconds{0});
    CHECK(transient_delay(p, 1, 0.999) == seconds{1});  // base 2 s
    CHECK(transient_delay(p, 3, 0.999) == seconds{7});  // 8 s ceiling
    CHECK(transient_delay(p, 7, 0.999) == seconds{127});
    p.max_tries = 20;
    CHECK(transient_delay(p, 15, 0.999) == seconds{599});  // capped at 10 min
    p.max_tries = 8;
    CHECK_FALSE(transient_delay(p, 8, 0.5));
}

TEST_CASE("unknown outcomes are looked up on the documented schedule, then parked") {
    unknown_policy p;
    CHECK(reconcile_delay(p, 0, seconds{0}) == seconds{10});
    CHECK(reconcile_delay(p, 1, seconds{10}) == seconds{60});
    CHECK(reconcile_delay(p, 2, seconds{70}) == seconds{300});
    CHECK(reconcile_delay(p, 3, seconds{370}) == seconds{1800});
    CHECK(reconcile_delay(p, 4, seconds{2170}) == seconds{3600});
    CHECK(reconcile_delay(p, 20, seconds{80000}) == seconds{3600});
    CHECK_FALSE(reconcile_delay(p, 26, seconds{24 * 3600}));
}

TEST_CASE("declines are retried on dunning days 1, 3, 5, 7 and then stop") {
    dunning_policy p;
    CHECK(dunning_offset(p, 1) == days{1});
    CHECK(dunning_offset(p, 2) == days{3});
    CHECK(dunning_offset(p, 3) == days{5});
    CHECK(dunning_offset(p, 4) == days{7});
    CHECK_FALSE(dunning_offset(p, 5));
    CHECK_FALSE(dunning_offset(p, 0));
}

TEST_CASE("text that reaches PortOne is valid UTF-8 without control characters") {
    CHECK(is_valid_utf8("cust_0001"));
    CHECK(is_valid_utf8("가나다 plan"));
    CHECK(is_valid_utf8("\xF0\x9F\x92\xB3"));        // a four-byte emoji
    CHECK_FALSE(is_valid_utf8("\xC3\x28"));          // bad continuation
    CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
    CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // a UTF-16 surrogate
    CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // beyond U+10FFFF
    CHECK_FALSE(is_valid_utf8("abc\xE2\x82"));       // truncated at the end
    CHECK_FALSE(is_valid_utf8("\xB1\xB8"));          // EUC-KR bytes
    CHECK(utf8_length("가나다") == 3);
    CHECK(has_control_character("a\r\nb"));
    CHECK(has_control_character(std::string("a\0b", 3)));
    CHECK(has_control_character("\x7F"));
    CHECK_FALSE(has_control_character("가 a-b_c"));
    CHECK_FALSE(check_text("name", "가나다", 1, 3));
    CHECK(check_text("name", "가나다라", 1, 3)->find("1 to 3") != std::string::npos);
    CHECK(check_text("name", "", 1, 3));
    CHECK(check_text("name", "a\tb", 1, 3)->find("control") != std::string::npos);
}
