/*
 * error.c - names and texts of the WS_E* codes, generated from the one
 * list in ws.h. No state.
 */
#include "ws/ws.h"

/* The text for code, from WS_ERRNO_MAP. */
const char *ws_strerror(int code)
{
    switch (code) {
#define WS_ERROR_TEXT_(name, value, text)                                      \
    case value:                                                                \
        return text;
        WS_ERRNO_MAP(WS_ERROR_TEXT_)
#undef WS_ERROR_TEXT_
    }
    return "unknown error";
}

/* The symbolic name for code, from WS_ERRNO_MAP. */
const char *ws_errname(int code)
{
    switch (code) {
#define WS_ERROR_NAME_(name, value, text)                                      \
    case value:                                                                \
        return "WS_" #name;
        WS_ERRNO_MAP(WS_ERROR_NAME_)
#undef WS_ERROR_NAME_
    }
    return "WS_EUNKNOWN";
}
