# Non-recursive Makefile: every object goes to $(BUILD)/ under the same
# subpath as its source; nothing is written to the source tree.
#   make            library + programs        make test     all tests
#   make asan       tests under ASan+UBSan    make valgrind tests under valgrind
#   make deps       install missing Debian packages for the build (root);
#                   make deps-all also those of the tests
#   V=1 shows commands; WERROR=0 drops -Werror; BACKEND=select picks a backend.

BUILD   ?= build
CC      ?= cc
BACKEND ?= select
WERROR  ?= 1
OPT     ?= -O2 -g
SANITIZE ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wcast-align -Wwrite-strings \
        -Wformat=2 -Wvla
ifeq ($(WERROR),1)
WARN += -Werror
endif
SANFLAGS :=
ifneq ($(SANITIZE),)
SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
endif

PKGS := libssl libcrypto zlib
CPPFLAGS += -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS   += $(OPT) $(WARN) $(SANFLAGS) -pthread -MMD -MP
LDFLAGS  += $(SANFLAGS) -pthread
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lssl -lcrypto -lz) \
            -lhttp_parser
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

# --- the library, layer by layer (net -> http -> ws) ---
NET_SRC := net/error.c net/buf.c net/loop.c net/loop_external.c \
           net/backend_$(BACKEND).c \
           net/sock.c net/addr.c net/neterr.c net/sockopt.c net/connect.c \
           net/listener.c net/outq.c net/transport_plain.c net/tls.c \
           net/transport_tls.c
HTTP_SRC := http/request.c http/body.c http/handshake.c http/static.c \
            http/query.c
WS_SRC := ws/mask.c ws/utf8.c ws/utf8_x86.c ws/frame.c ws/session.c \
          ws/session_send.c ws/topic.c ws/publish.c ws/watch.c ws/embed.c \
          ws/deflate_offer.c ws/deflate.c \
          ws/idmap.c ws/server.c ws/shutdown.c ws/conn.c ws/conn_io.c \
          ws/conn_http.c ws/conn_api.c ws/post.c ws/timer.c ws/request_api.c
LIB_SRC := $(NET_SRC) $(HTTP_SRC) $(WS_SRC)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libws.a
# The optional Redis bridge (ws/redis.h), its own library on hiredis:
# programs that do not use it do not link it.
REDIS_LIB := $(BUILD)/libws_redis.a
REDIS_LIBS := $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)
# The pure codecs also get -Wconversion.
PURE := ws/mask.c ws/frame.c ws/utf8.c ws/utf8_x86.c http/handshake.c \
        http/static.c http/query.c ws/deflate_offer.c

# --- programs: demo/<name>.c as $(BUILD)/<name> on the library ---
SOCK_DEMOS := tcp_echo_server tcp_client udp_echo_server udp_client \
              tcp_chat sockopt_bench
CHAT_SRC := demo/chat.c demo/chat_room.c demo/chat_redis.c demo/workers.c
CHAT_LIBS := -ljansson
PROGS := $(BUILD)/ws_echo $(BUILD)/ws_chat $(SOCK_DEMOS:%=$(BUILD)/%)

# --- unit tests: tests/test_<name>.c, each linked with only its modules ---
UNIT := frame utf8 buf loop loop_external sock addr sockopt listener \
        request handshake session deflate idmap static outq topic query
NET_CORE := net/sock net/addr net/neterr net/sockopt net/error
CODEC := ws/frame ws/mask ws/utf8 ws/utf8_x86 net/error
MOD_frame     := $(CODEC)
MOD_utf8      := $(CODEC)
MOD_session   := ws/session ws/session_send ws/deflate ws/deflate_offer net/buf $(CODEC)
MOD_deflate   := $(MOD_session)
MOD_buf       := net/buf net/error
MOD_outq      := net/outq net/buf net/error
MOD_topic     := ws/topic net/error
MOD_loop      := net/loop net/backend_$(BACKEND) $(NET_CORE)
MOD_loop_external := net/loop_external $(MOD_loop)
MOD_sock      := $(NET_CORE) net/connect
MOD_addr      := $(NET_CORE)
MOD_sockopt   := $(NET_CORE) net/connect
MOD_listener  := net/listener net/loop net/backend_$(BACKEND) $(NET_CORE)
MOD_request   := http/request http/body net/error
MOD_handshake := http/handshake http/request http/body net/error
MOD_static    := http/static net/buf net/error
MOD_query     := http/query net/error
MOD_idmap     := ws/idmap net/error
UNIT_BIN := $(UNIT:%=$(BUILD)/tests/test_%)

# --- integration tests: tests/integration/ (C through the public API,
# Python clients), tests/browser/ (Chromium) ---
ITEST := server threads shutdown http embed
ITEST_BIN := $(ITEST:%=$(BUILD)/tests/itest_%)
TEST_SERVERS := $(BUILD)/tests/ws_bcast $(BUILD)/tests/tls_server \
                $(BUILD)/tests/ws_topics

.PHONY: all deps deps-all test unit integration test-bins asan tsan valgrind \
        format format-check clean run run-tls certs check-backends bench \
        fuzz
# Plain make (and make install) never installs packages: a packager builds
# with them. make run, make test and make bench install what is missing
# first, and only then build (so that make -j does not compile before the
# headers are there).
all: $(LIB) $(REDIS_LIB) $(PROGS)

deps:
	$(Q)sh tests/deps.sh build

deps-all:
	$(Q)sh tests/deps.sh all

$(LIB): $(LIB_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(REDIS_LIB): $(BUILD)/ws/redis.o
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC  $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(if $(filter $<,$(PURE)),-Wconversion) \
	    -c $< -o $@

$(BUILD)/ws_echo: $(BUILD)/demo/echo.o $(BUILD)/demo/workers.o \
                  $(BUILD)/demo/embed_epoll.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/ws_chat: $(CHAT_SRC:%.c=$(BUILD)/%.o) $(REDIS_LIB) $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(CHAT_LIBS) $(REDIS_LIBS) $(LDLIBS) -o $@

$(SOCK_DEMOS:%=$(BUILD)/%): $(BUILD)/%: $(BUILD)/demo/%.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Objects made on the way to a test binary are kept, so that a second
# make test compiles only what changed.
.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o \
                       $$(addprefix $(BUILD)/,$$(addsuffix .o,$$(MOD_$$*)))
	$(Q)$(CC) $(LDFLAGS) $^ $(CMOCKA_LIBS) $(LDLIBS) -o $@

$(BUILD)/tests/itest_%: $(BUILD)/tests/integration/itest_%.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(CMOCKA_LIBS) $(LDLIBS) -o $@

# A broadcast server for the hostile-peer tests.
$(BUILD)/tests/ws_bcast: $(BUILD)/tests/integration/ws_bcast.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The pub/sub test server (test_topics.py).
$(BUILD)/tests/ws_topics: $(BUILD)/tests/integration/ws_topics.o \
                          $(REDIS_LIB) $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(REDIS_LIBS) $(LDLIBS) -o $@

# The TLS test server (test_tls.py).
$(BUILD)/tests/tls_server: $(BUILD)/tests/integration/tls_server.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

test-bins: $(LIB) $(PROGS) $(UNIT_BIN) $(ITEST_BIN) $(TEST_SERVERS) \
           $$(EXAMPLE_BIN)

# Each first installs what is missing, then builds in a sub-make.
test: deps-all
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)BUILD=$(BUILD) BACKEND=$(BACKEND) SANITIZE_LDFLAGS="$(SANFLAGS)" \
	    sh tests/run_all.sh

unit: deps-all
	$(Q)$(MAKE) --no-print-directory $(UNIT_BIN)
	$(Q)BUILD=$(BUILD) BACKEND=$(BACKEND) SANITIZE_LDFLAGS="$(SANFLAGS)" \
	    sh tests/run_all.sh unit

integration: deps-all
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)BUILD=$(BUILD) BACKEND=$(BACKEND) SANITIZE_LDFLAGS="$(SANFLAGS)" \
	    sh tests/run_all.sh integration

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" \
	    SANITIZE=address,undefined test

tsan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/tsan OPT="-O1 -g" \
	    SANITIZE=thread test

# The whole suite once per polling backend, each in its own build tree;
# epoll runs even when select failed, and either failure fails the target.
check-backends:
	$(Q)rc=0; \
	for b in select epoll; do \
	    echo "=== check-backends: BACKEND=$$b"; \
	    $(MAKE) --no-print-directory BACKEND=$$b BUILD=build/$$b test || \
	        { rc=1; echo "check-backends: BACKEND=$$b FAILED"; }; \
	done; \
	exit $$rc

valgrind: deps-all
	$(Q)$(MAKE) --no-print-directory test-bins
	$(Q)BUILD=$(BUILD) BACKEND=$(BACKEND) VALGRIND=1 sh tests/run_all.sh

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(BUILD)/ws_chat --www www

# A test CA and a certificate for 127.0.0.1, ::1 and localhost (no key is
# committed); make run-tls serves the chat over https with them.
certs:
	$(Q)sh tests/tls/make_certs.sh $(BUILD)/certs

run-tls: deps
	$(Q)$(MAKE) --no-print-directory all certs
	$(BUILD)/ws_chat --www www --tls-cert $(BUILD)/certs/server.pem \
	    --tls-key $(BUILD)/certs/server.key

FORMAT_FILES = $(wildcard */*.c */*.h tests/*/*.c tests/*/*.h demo/*/*.c \
                          tests/bench/peers/*.c)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD)

# --- benchmark (make bench) ---
# tests/bench/: the load generator and the peer echo and fan-out servers,
# built into $(BUILD)/bench/; our ws_echo and ws_fanout use the epoll backend
# when it exists (in their own tree, build/bench-<backend>). Peers it cannot
# install are skipped.
# BENCH_SECONDS=D, BENCH_ROUNDS=R, BENCH_QUICK=1 (1 round of 1 s).
BENCH_DIR := $(BUILD)/bench
BENCH_LG := tests/bench/loadgen.c tests/bench/lg_conn.c \
            tests/bench/lg_proto.c tests/bench/lg_stats.c \
            tests/bench/lg_deflate.c tests/bench/lg_tls.c \
            tests/bench/lg_rate.c tests/bench/lg_fanout.c
BENCH_BACKEND := $(if $(wildcard net/backend_epoll.c),epoll,select)
BENCH_ECHO := build/bench-$(BENCH_BACKEND)/ws_echo
BENCH_FANOUT := build/bench-$(BENCH_BACKEND)/ws_fanout
# Evaluated when used: libwebsockets-dev may be installed by the recipe.
LWS_CFLAGS = $(shell pkg-config --cflags libwebsockets 2>/dev/null)
LWS_LIBS = $(shell pkg-config --libs libwebsockets 2>/dev/null \
                   || echo -lwebsockets)

$(BENCH_DIR)/loadgen: $(BENCH_LG:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BENCH_DIR)/raw_echo: $(BUILD)/tests/bench/peers/raw_echo.o \
                      $(BUILD)/tests/bench/peers/peer_loop.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ -o $@

# The TLS ceiling: the raw echo's loop with OpenSSL and no WebSocket.
$(BENCH_DIR)/tls_echo: $(BUILD)/tests/bench/peers/tls_echo.o \
                      $(BUILD)/tests/bench/peers/peer_loop.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The protocol's floor: our codecs without the library around them.
$(BENCH_DIR)/floor_echo: $(BUILD)/tests/bench/peers/floor_echo.o \
                        $(BUILD)/tests/bench/peers/peer_loop.o $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/bench/peers/lws_echo.o: CPPFLAGS += $(LWS_CFLAGS)
$(BENCH_DIR)/lws_echo: $(BUILD)/tests/bench/peers/lws_echo.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LWS_LIBS) -o $@

# The fan-out server of ours (topic "room"), built beside ws_echo in the
# bench tree: make BACKEND=epoll BUILD=build/bench-epoll \
# build/bench-epoll/ws_fanout. It links the Redis bridge for --redis (make
# bench-scale); without --redis the bridge is never attached.
$(BUILD)/ws_fanout: $(BUILD)/tests/bench/peers/ws_fanout.o $(REDIS_LIB) $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(REDIS_LIBS) $(LDLIBS) -o $@

$(BUILD)/tests/bench/peers/lws_fanout.o: CPPFLAGS += $(LWS_CFLAGS)
$(BENCH_DIR)/lws_fanout: $(BUILD)/tests/bench/peers/lws_fanout.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LWS_LIBS) -o $@

bench: deps
	$(Q)$(MAKE) --no-print-directory BACKEND=$(BENCH_BACKEND) \
	    BUILD=build/bench-$(BENCH_BACKEND) $(BENCH_ECHO) $(BENCH_FANOUT)
	$(Q)$(MAKE) --no-print-directory $(BENCH_DIR)/loadgen \
	    $(BENCH_DIR)/raw_echo $(BENCH_DIR)/floor_echo $(BENCH_DIR)/tls_echo
	$(Q)pkg-config --exists libwebsockets || \
	    { apt-get install -y -q libwebsockets-dev >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && \
	        apt-get install -y -q libwebsockets-dev >/dev/null 2>&1; }; } || \
	    echo "bench: libwebsockets-dev not installed; lws is skipped"
	$(Q)! pkg-config --exists libwebsockets || \
	    $(MAKE) --no-print-directory $(BENCH_DIR)/lws_echo \
	        $(BENCH_DIR)/lws_fanout || \
	    echo "bench: lws_echo or lws_fanout did not build; lws is skipped"
	$(Q)(cd tests/bench/peers/node && \
	     npm install --no-audit --no-fund --loglevel=error) || \
	    echo "bench: npm install failed; node peers are skipped"
	$(Q)/usr/bin/python3 tests/bench/run.py --bench-dir $(BENCH_DIR) \
	    --ws-echo $(BENCH_ECHO) --ws-fanout $(BENCH_FANOUT) \
	    --backend $(BENCH_BACKEND)

# Scaling out (tests/bench/scale.py, not part of make bench): one room of
# 1 000 on one ws_fanout against two bridged through a redis-server of
# its own, and ws_echo with 1 and 2 reuse-port workers. BENCH_SHAPES=redis
# or =workers runs one half; BENCH_ROUNDS (5), BENCH_PIN=0,
# BENCH_QUIET_WAIT, BENCH_RETRIES: see tests/bench/README.md. The
# loadgen's objects go to the bench tree too, so that build/ is not
# touched.
.PHONY: bench-scale
bench-scale: deps
	$(Q)command -v redis-server >/dev/null 2>&1 || \
	    { apt-get install -y -q redis-server >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && \
	        apt-get install -y -q redis-server >/dev/null 2>&1; }; } || \
	    echo "bench-scale: redis-server not installed; redis is skipped"
	$(Q)$(MAKE) --no-print-directory BACKEND=$(BENCH_BACKEND) \
	    BUILD=build/bench-$(BENCH_BACKEND) $(BENCH_ECHO) $(BENCH_FANOUT)
	$(Q)$(MAKE) --no-print-directory BACKEND=$(BENCH_BACKEND) \
	    BUILD=build/bench-$(BENCH_BACKEND) BENCH_DIR=$(BENCH_DIR) \
	    $(BENCH_DIR)/loadgen
	$(Q)/usr/bin/python3 tests/bench/scale.py --bench-dir $(BENCH_DIR) \
	    --ws-echo $(BENCH_ECHO) --ws-fanout $(BENCH_FANOUT)

# --- utf8 micro-benchmark ---
# $(BENCH_DIR)/utf8_bench: median time to validate text (ASCII, 10 % and
# 90 % non-ASCII; 16 B, 512 B, 1 MiB) per ws/utf8.c implementation, and to
# unmask and check 1 MiB of masked text; make utf8-bench builds and runs it.
.PHONY: utf8-bench
$(BENCH_DIR)/utf8_bench: $(BUILD)/tests/bench/utf8_bench.o \
                         $(BUILD)/tests/bench/lg_proto.o \
                         $(BUILD)/ws/mask.o $(BUILD)/ws/utf8.o $(BUILD)/ws/utf8_x86.o \
                         $(BUILD)/ws/frame.o \
                         $(BUILD)/net/error.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

utf8-bench: $(BENCH_DIR)/utf8_bench
	$(Q)$(BENCH_DIR)/utf8_bench
# --- end utf8 micro-benchmark ---

# --- README examples, shared library, install (issue 6) ---
# demo/examples/<name>.c, the README's examples, built as
# $(BUILD)/examples/<name> by all/test and run by test_examples.py.
# make shared: $(BUILD)/libws.so.$(VERSION) from -fPIC objects in
# $(BUILD)/pic/ (the static library's objects are not touched).
# make install / uninstall: PREFIX, DESTDIR, LIBDIR, INCLUDEDIR,
# PKGCONFIGDIR; tests/install_test.sh builds against the installed copy.
VERSION    := 0.1.0
SONAME     := libws.so.0
SOLIB      := $(BUILD)/libws.so.$(VERSION)
PIC_OBJ    := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
EXAMPLES   := echo worker_broadcast upload_to_file select_embed pubsub \
              http_api epoll_embed
EXAMPLE_BIN := $(EXAMPLES:%=$(BUILD)/examples/%)
# libevent_embed needs libevent 2 (Debian libevent-dev, which make deps-all
# installs for make test: its sub-make reads this again afterwards). Plain
# make skips it, with a note, when pkg-config does not find it.
ifeq ($(shell pkg-config --exists libevent 2>/dev/null && echo yes),yes)
EXAMPLE_BIN += $(BUILD)/examples/libevent_embed
else
all: libevent-example-skipped
endif
$(BUILD)/demo/examples/libevent_embed.o: CPPFLAGS += \
    $(shell pkg-config --cflags libevent 2>/dev/null)
$(BUILD)/examples/libevent_embed: LDLIBS += \
    $(shell pkg-config --libs libevent 2>/dev/null || echo -levent)
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL    ?= install
# Everything the library itself links is in libws.so; -z defs proves it
# (not under sanitizers: their runtime comes with the program).
SO_DEFS    := $(if $(SANFLAGS),,-Wl,-z,defs)

.PHONY: examples shared install uninstall libevent-example-skipped
all: $(EXAMPLE_BIN)
examples: $(EXAMPLE_BIN)
shared: $(SOLIB)

$(EXAMPLE_BIN): $(BUILD)/examples/%: $(BUILD)/demo/examples/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

libevent-example-skipped:
	@echo "examples: libevent-dev not found; libevent_embed is not built" \
	    "(make deps-all installs it)"

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC  $< (PIC)")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC \
	    $(if $(filter $<,$(PURE)),-Wconversion) -c $< -o $@

# Only what the public headers declare is exported: the version script is
# made from their function declarations, so the two cannot drift apart.
# ws/ws.h includes "net/error.h" and "net/tls_config.h", installed as
# ws/net/ beside it.
PUBLIC_HDR := ws/ws.h net/error.h net/tls_config.h
$(BUILD)/libws.map: $(PUBLIC_HDR)
	@mkdir -p $(dir $@)
	$(Q){ echo '{ global:'; \
	  sed -n 's/^[a-z].*[ *]\(ws_[a-z0-9_]*\)(.*/  \1;/p' $(PUBLIC_HDR); \
	  echo 'local: *; };'; } > $@

$(SOLIB): $(PIC_OBJ) $(BUILD)/libws.map
	$(Q)$(CC) -shared $(LDFLAGS) $(SO_DEFS) -Wl,-soname,$(SONAME) \
	    -Wl,--version-script=$(BUILD)/libws.map $(PIC_OBJ) $(LDLIBS) -o $@
	$(Q)ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(BUILD)/libws.so

# ws.pc is written at install time, so a new PREFIX is always honoured;
# paths under PREFIX are written relative to ${prefix}.
PC_SUBST := -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|' \
    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|'

install: $(LIB) $(SOLIB) $(REDIS_LIB)
	$(INSTALL) -d "$(DESTDIR)$(LIBDIR)" "$(DESTDIR)$(INCLUDEDIR)/ws/net" \
	    "$(DESTDIR)$(PKGCONFIGDIR)"
	$(INSTALL) -m 644 $(LIB) "$(DESTDIR)$(LIBDIR)/libws.a"
	$(INSTALL) -m 644 $(REDIS_LIB) "$(DESTDIR)$(LIBDIR)/libws_redis.a"
	$(INSTALL) -m 755 $(SOLIB) "$(DESTDIR)$(LIBDIR)/libws.so.$(VERSION)"
	ln -sf libws.so.$(VERSION) "$(DESTDIR)$(LIBDIR)/$(SONAME)"
	ln -sf $(SONAME) "$(DESTDIR)$(LIBDIR)/libws.so"
	$(INSTALL) -m 644 ws/ws.h "$(DESTDIR)$(INCLUDEDIR)/ws/ws.h"
	$(INSTALL) -m 644 ws/redis.h "$(DESTDIR)$(INCLUDEDIR)/ws/redis.h"
	$(INSTALL) -m 644 net/error.h "$(DESTDIR)$(INCLUDEDIR)/ws/net/error.h"
	$(INSTALL) -m 644 net/tls_config.h \
	    "$(DESTDIR)$(INCLUDEDIR)/ws/net/tls_config.h"
	sed $(PC_SUBST) ws/ws.pc.in > "$(DESTDIR)$(PKGCONFIGDIR)/ws.pc"
	chmod 644 "$(DESTDIR)$(PKGCONFIGDIR)/ws.pc"

uninstall:
	rm -f "$(DESTDIR)$(LIBDIR)/libws.a" "$(DESTDIR)$(LIBDIR)/libws.so" \
	    "$(DESTDIR)$(LIBDIR)/libws_redis.a" \
	    "$(DESTDIR)$(INCLUDEDIR)/ws/redis.h" \
	    "$(DESTDIR)$(LIBDIR)/$(SONAME)" \
	    "$(DESTDIR)$(LIBDIR)/libws.so.$(VERSION)" \
	    "$(DESTDIR)$(INCLUDEDIR)/ws/ws.h" \
	    "$(DESTDIR)$(INCLUDEDIR)/ws/net/error.h" \
	    "$(DESTDIR)$(INCLUDEDIR)/ws/net/tls_config.h" \
	    "$(DESTDIR)$(PKGCONFIGDIR)/ws.pc"
	-rmdir "$(DESTDIR)$(INCLUDEDIR)/ws/net" "$(DESTDIR)$(INCLUDEDIR)/ws" \
	    2>/dev/null
# --- end examples and install block ---

# --- fuzzing (issue 5) ---
# make fuzz: clang libFuzzer targets tests/fuzz/fuzz_<name>.c, each run for
# FUZZ_SECONDS on its seed corpus tests/fuzz/corpus/<name>/.
# Each target is one clang command over its own sources (gcc objects are
# never reused) into $(BUILD)/fuzz/. tests/fuzz/run.sh runs it on a copy of
# the seeds in $(BUILD)/fuzz/corpus/<name>, with tests/fuzz/<dict>.dict,
# and keeps crash files in $(BUILD)/fuzz/artifacts/<name>/; the source
# tree is never written. The target fails if any fuzzer finds a crash.
#   make fuzz FUZZ_SECONDS=10       short runs (CI); 0 only replays seeds
#   make fuzz FUZZ_TARGETS=frame    some targets only
#   make fuzz FUZZ_FLAGS=-jobs=2    more libFuzzer options
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= utf8 frame session request handshake deflate
FUZZ_FLAGS   ?=
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -fno-omit-frame-pointer $(WARN)
FUZZ_SRC_utf8      := ws/mask.c ws/utf8.c ws/utf8_x86.c net/error.c
FUZZ_SRC_frame     := ws/frame.c ws/mask.c ws/utf8.c ws/utf8_x86.c net/error.c
FUZZ_SRC_session   := ws/session.c ws/session_send.c ws/deflate.c \
                      ws/deflate_offer.c \
                      ws/frame.c ws/mask.c ws/utf8.c ws/utf8_x86.c \
                      net/buf.c net/error.c
FUZZ_SRC_deflate   := $(FUZZ_SRC_session)
FUZZ_SRC_request   := http/request.c http/body.c http/handshake.c net/error.c
FUZZ_SRC_handshake := http/handshake.c net/error.c
FUZZ_DICT_utf8      := tests/fuzz/utf8.dict
FUZZ_DICT_frame     := tests/fuzz/frame.dict
FUZZ_DICT_session   := tests/fuzz/frame.dict
FUZZ_DICT_request   := tests/fuzz/http.dict
FUZZ_DICT_handshake := tests/fuzz/http.dict
FUZZ_DICT_deflate   := tests/fuzz/deflate.dict
# Longer inputs let several fragments reach the session's 4096-byte limit.
FUZZ_OPTS_session   := -max_len=16384
FUZZ_OPTS_deflate   := -max_len=16384
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_HDR := $(wildcard ws/*.h http/*.h net/*.h tests/fuzz/*.h)

fuzz: $(FUZZ_BIN)
	$(Q)rc=0; $(foreach t,$(FUZZ_TARGETS),sh tests/fuzz/run.sh $(t) \
	    $(FUZZ_DIR) $(FUZZ_SECONDS) "$(FUZZ_DICT_$(t))" \
	    "$(FUZZ_OPTS_$(t)) $(FUZZ_FLAGS)" || rc=1;) exit $$rc

# libFuzzer needs clang and its runtime (Debian: libclang-rt-<N>-dev).
$(FUZZ_DIR)/.toolchain:
	@mkdir -p $(dir $@)
	$(Q)command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "make fuzz:" \
	    "$(FUZZ_CC) not found: apt-get install clang libclang-rt-14-dev" \
	    >&2; exit 1; }
	$(Q)printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
	    '{ (void)d; (void)n; return 0; }' | \
	    $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -x c - \
	    -o $(FUZZ_DIR)/.probe >/dev/null 2>&1 || { echo "make fuzz:" \
	    "$(FUZZ_CC) cannot link libFuzzer: apt-get install" \
	    "libclang-rt-14-dev (the libclang-rt-<N>-dev of your clang)" \
	    >&2; exit 1; }
	$(Q)rm -f $(FUZZ_DIR)/.probe
	$(Q)touch $@

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*) $(FUZZ_HDR) \
                    | $(FUZZ_DIR)/.toolchain
	@$(if $(Q),echo "  FUZZCC $@")
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) $< \
	    $(FUZZ_SRC_$*) $(LDLIBS) -o $@
# --- end fuzz block ---

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
