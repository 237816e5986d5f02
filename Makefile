# Non-recursive Makefile: every object goes to $(BUILD)/ under the same
# subpath as its source; nothing is written to the source tree.
#   make            library + programs        make test     all tests
#   make asan       tests under ASan+UBSan    make valgrind tests under valgrind
#   make deps       install missing Debian packages (as root)
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
# The pure codecs also get -Wconversion.
PURE := ws/frame.c ws/utf8.c http/handshake.c

SANFLAGS :=
ifneq ($(SANITIZE),)
SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
endif

PKGS := libcrypto
CPPFLAGS += -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
CFLAGS   += $(OPT) $(WARN) $(SANFLAGS) -pthread -MMD -MP
LDFLAGS  += $(SANFLAGS) -pthread
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcrypto) \
            -lhttp_parser
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

# --- socket layer and its demos (issue 4) ---
# Extra net/*.c files of the socket layer, and demo/<name>.c programs
# built as $(BUILD)/<name> on the library.
NET_EXTRA_SRC := net/addr.c net/neterr.c net/sockopt.c net/connect.c
SOCK_DEMOS := tcp_echo_server tcp_client udp_echo_server udp_client \
              tcp_chat sockopt_bench
# --- end socket layer block ---

# --- chat demo (issue 3) ---
CHAT_SRC := demo/chat.c
CHAT_LIBS := -ljansson
# --- end chat block ---

LIB_SRC := net/buf.c net/loop.c net/backend_$(BACKEND).c net/sock.c \
           $(NET_EXTRA_SRC) \
           http/request.c http/handshake.c $(wildcard http/static.c) \
           ws/error.c ws/utf8.c ws/frame.c ws/session.c ws/server.c ws/conn.c \
           ws/idmap.c ws/post.c ws/timer.c \
           ws/request_api.c
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB     := $(BUILD)/libws.a

PROGS := $(BUILD)/ws_echo $(if $(wildcard demo/chat.c),$(BUILD)/ws_chat) \
         $(SOCK_DEMOS:%=$(BUILD)/%)

# Unit tests: each links only the modules it tests.
UNIT := frame utf8 buf loop sock request handshake session idmap
MOD_frame     := ws/frame ws/utf8 ws/error
MOD_utf8      := ws/utf8 ws/error
MOD_buf       := net/buf ws/error
MOD_loop      := net/loop net/backend_$(BACKEND) net/sock ws/error
MOD_sock      := net/sock ws/error
MOD_request   := http/request ws/error
MOD_handshake := http/handshake http/request ws/error
MOD_session   := ws/session ws/frame ws/utf8 net/buf ws/error
MOD_idmap     := ws/idmap ws/error
# --- unit tests of the socket layer (issue 4) ---
# UNIT += ...   and   MOD_<name> := <modules>
# net/sock.c resolves through net/addr.c and applies net/sockopt.c.
NET_CORE := net/sock net/addr net/neterr net/sockopt
MOD_sock += net/addr net/neterr net/sockopt net/connect
MOD_loop += net/addr net/neterr net/sockopt
UNIT += addr sockopt
MOD_addr := $(NET_CORE) ws/error
MOD_sockopt := $(NET_CORE) net/connect ws/error
# --- end socket layer tests ---

# --- unit tests of static files (issue 3) ---
UNIT += $(if $(wildcard tests/test_static.c),static)
MOD_static := http/static ws/error
# --- end static tests ---

UNIT_BIN := $(UNIT:%=$(BUILD)/tests/test_%)

# C integration tests through the public API (linked with the library).
ITEST := server
ITEST_BIN := $(ITEST:%=$(BUILD)/tests/itest_%)

.PHONY: all deps test unit integration asan valgrind format format-check \
        clean run
all: deps $(LIB) $(PROGS)

deps:
	$(Q)sh tests/deps.sh

$(LIB): $(LIB_OBJ)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC  $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(if $(filter $<,$(PURE)),-Wconversion) \
	    -c $< -o $@

$(BUILD)/ws_echo: $(BUILD)/demo/echo.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/ws_chat: $(CHAT_SRC:%.c=$(BUILD)/%.o) $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(CHAT_LIBS) $(LDLIBS) -o $@

$(SOCK_DEMOS:%=$(BUILD)/%): $(BUILD)/%: $(BUILD)/demo/%.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o \
                       $$(addprefix $(BUILD)/,$$(addsuffix .o,$$(MOD_$$*)))
	$(Q)$(CC) $(LDFLAGS) $^ $(CMOCKA_LIBS) $(LDLIBS) -o $@

$(BUILD)/tests/itest_%: $(BUILD)/tests/itest_%.o $(LIB)
	$(Q)$(CC) $(LDFLAGS) $^ $(CMOCKA_LIBS) $(LDLIBS) -o $@

test: deps $(LIB) $(PROGS) $(UNIT_BIN) $(ITEST_BIN)
	$(Q)BUILD=$(BUILD) SANITIZE_LDFLAGS="$(SANFLAGS)" sh tests/run_all.sh

unit: deps $(UNIT_BIN)
	$(Q)BUILD=$(BUILD) SANITIZE_LDFLAGS="$(SANFLAGS)" sh tests/run_all.sh unit

integration: deps $(PROGS) $(ITEST_BIN)
	$(Q)BUILD=$(BUILD) SANITIZE_LDFLAGS="$(SANFLAGS)" sh tests/run_all.sh integration

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" \
	    SANITIZE=address,undefined test

valgrind: deps $(LIB) $(PROGS) $(UNIT_BIN) $(ITEST_BIN)
	$(Q)BUILD=$(BUILD) VALGRIND=1 sh tests/run_all.sh

run: all
	$(BUILD)/ws_echo --verbose

format:
	clang-format -i $(wildcard */*.c */*.h tests/*/*.c)

format-check:
	clang-format --dry-run --Werror $(wildcard */*.c */*.h tests/*/*.c)

clean:
	rm -rf $(BUILD)

# --- fuzzing (issue 5) ---
# make fuzz: clang libFuzzer targets tests/fuzz/fuzz_<name>.c, each run for
# FUZZ_SECONDS on its seed corpus tests/fuzz/corpus/<name>/.
# --- end fuzz block ---

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
