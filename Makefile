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

$(B)/tests/%: tests/unit/%.c tests/unit/check.h $(B)/libferry.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -iquote tests/unit -o $@ $< $(B)/libferry.a -lssl -lcrypto

run: deps all
	$(B)/ferryd --root . $(PORT)

test: deps all
	@bash tests/run.sh $(B)

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	$(MAKE) B=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 bash tests/run.sh build-asan

clean:
	rm -rf build build-asan

# Benchmark against vsftpd, proftpd, pure-ftpd and pyftpdlib (bench/README.md).
# Runs as root; ARGS passes options, e.g. make bench ARGS='--rows 1,2'.
.PHONY: bench-quick
bench: deps all
	$(PYTHON) bench/run.py $(ARGS)

bench-quick: deps all
	$(PYTHON) bench/run.py --quick $(ARGS)
