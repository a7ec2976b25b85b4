#include <cstdio>
int main() { std::puts("xtile: under construction"); return 0; }
