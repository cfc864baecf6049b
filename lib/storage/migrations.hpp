// Schema migrations embedded from schema/NNNN_name.sql at build time.
#pragma once

#include <string_view>
#include <vector>

namespace billingd::storage {

struct migration {
    int version;  // PRAGMA user_version after it is applied
    std::string_view name;
    std::string_view sql;
};

// All migrations, in order, numbered from 1.
const std::vector<migration>& migrations();

}  // namespace billingd::storage
