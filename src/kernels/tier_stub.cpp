namespace { [[maybe_unused]] int tier_anchor = 0; }
