/* The one Apple SDK header ring's C code includes, enough for `cargo check` of the agent for
 * aarch64-apple-darwin on Linux (compile only, nothing is linked). Used by .ci/run, never
 * by a real macOS build, which uses the SDK's own. */
#pragma once
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_CPU_ARM64 1
