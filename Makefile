# ferry - build, test, run. Plain GNU make; the only build entry point.

CC      ?= cc
# CI builds are -Werror (CI=true in the environment); local builds warn.
WERROR  := $(if $(filter true 1 yes,$(CI)),-Werror,)
CFLAGS  ?= -O2 -g
override CFLAGS += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2 -Wno-format-nonliteral $(WERROR) \
           -D_FORTIFY_SOURCE=2 -fPIE -fstack-protector-strong -iquote src/lib $(SANITIZE)
override LDFLAGS += -pie -Wl,-z,relro,-z,now $(SANITIZE)
PYTHON  := /usr/bin/python3
PORT    ?= 2121

B := build
LIB_SRC    := $(wildcard src/lib/*.c)
SERVER_SRC := $(wildcard src/server/*.c)
CLIENT_SRC := $(wildcard src/client/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

LIB_OBJ    := $(LIB_SRC:%.c=$(B)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(B)/%.o)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(B)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

.PHONY: all run test test-asan unit integration clean deps bench stress fuzz

all: $(B)/ferryd $(B)/ferry $(UNIT_BIN)

deps:
	@bash scripts/deps.sh

$(B)/%.o: %.c $(wildcard src/lib/*.h src/server/*.h src/client/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libferry.a: $(LIB_OBJ)
	ar rcs $@ $^

$(B)/ferryd: $(SERVER_OBJ) $(B)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcrypt -lssl -lcrypto -lseccomp

$(B)/ferry: $(CLIENT_OBJ) $(B)/libferry.a
	$(CC) $(LDFLAGS) -o $@ $^ -ledit -lssl -lcrypto

# Some unit tests include a server module's source whole: they follow it too.
$(B)/tests/%: tests/unit/%.c tests/unit/check.h $(B)/libferry.a $(wildcard src/server/*.[ch] src/lib/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -iquote tests/unit -o $@ $< $(B)/libferry.a -lssl -lcrypto

run: deps all
	$(B)/ferryd --root . $(PORT)

# Every test, on the normal build and again on a build with
# AddressSanitizer and UndefinedBehaviorSanitizer, the two at once.
NPROC := $(shell nproc 2>/dev/null || echo 2)
test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) all asan-build
	@bash tests/run.sh $(B) build-asan

# The whole suite under the sanitizers only.
test-asan: deps asan-build
	@bash tests/run.sh build-asan

.PHONY: asan-build
asan-build:
	@$(MAKE) --no-print-directory B=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all

# 1,000 concurrent clients x 5 mixed transfers, every checksum verified.
stress: deps all
	FERRY_BUILD=$(CURDIR)/$(B) $(PYTHON) tests/stress/stress.py $(ARGS)

clean:
	rm -rf build build-asan

# Benchmark against vsftpd, proftpd, pure-ftpd and pyftpdlib (bench/README.md).
# Runs as root; ARGS passes options, e.g. make bench ARGS='--rows 1,2'.
.PHONY: bench-quick
bench: deps all $(B)/small_client
	$(PYTHON) bench/run.py $(ARGS)

bench-quick: deps all $(B)/small_client
	$(PYTHON) bench/run.py --quick $(ARGS)

# Row 3's load client (bench/small_client.c).
$(B)/small_client: bench/small_client.c $(B)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libferry.a -lssl -lcrypto

# ---- fuzzing (docs/FUZZING.md) ------------------------------------------
# Every fuzz/fuzz_NAME.c is a libFuzzer target. `all` links each one with
# fuzz/replay_main.c into $(B)/fuzz/replay_NAME, which tests/run.sh runs
# over fuzz/corpus/NAME/ (no clang needed). `make fuzz` builds the real
# fuzzers with clang into build/fuzz-clang/ and runs each, one after the
# other, for FUZZ_SECONDS on a copy of its corpus.
FUZZ_NAMES   := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAY  := $(FUZZ_NAMES:%=$(B)/fuzz/replay_%)
FUZZ_SECONDS ?= 60
FUZZ_CLANG   ?= clang
FUZZ_B       := build/fuzz-clang
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# What a target needs beyond libferry.a: objects, sources it #includes, libraries.
FUZZ_OBJ_rlist   = $(B)/src/client/rlist.o
FUZZ_OBJ_session = $(B)/fuzz/libferryd.a
FUZZ_SRC_users   = src/server/users.c
FUZZ_SRC_session = src/server/worker.c
FUZZ_LIB_users   = -lcrypt
FUZZ_LIB_session = -Wl,--wrap=net_connect_start -lcrypt -lssl -lcrypto -lseccomp
FUZZ_INC         = -iquote src/server -iquote src/client -iquote fuzz

.PHONY: fuzz fuzz-build
all: $(FUZZ_REPLAY)

# The server without main.o and worker.o (the session target compiles
# worker.c itself); an archive, so only what is used is linked.
$(B)/fuzz/libferryd.a: $(filter-out $(B)/src/server/main.o $(B)/src/server/worker.o,$(SERVER_OBJ))
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

.SECONDEXPANSION:
$(B)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay_main.c fuzz/fuzz.h $$(FUZZ_OBJ_$$*) $$(FUZZ_SRC_$$*) \
		$(B)/libferry.a $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUZZ_INC) $(LDFLAGS) -o $@ $< fuzz/replay_main.c $(FUZZ_OBJ_$*) $(B)/libferry.a $(FUZZ_LIB_$*)

$(B)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $$(FUZZ_OBJ_$$*) $$(FUZZ_SRC_$$*) $(B)/libferry.a $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUZZ_INC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ_$*) $(B)/libferry.a $(FUZZ_LIB_$*)

fuzz-build: $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)

fuzz: deps
	@bash scripts/deps.sh fuzz
	$(MAKE) B=$(FUZZ_B) CC=$(FUZZ_CLANG) SANITIZE="$(FUZZ_SAN)" fuzz-build
	@bash fuzz/run.sh $(FUZZ_B)/fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)
