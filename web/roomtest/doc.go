// Package roomtest drives the video room and the imaging viewer
// (web/static/room) in headless Chromium against a real in-process server:
// fake camera and microphone, the lobby, media through the relay, and the
// presenter's view reaching a follower. Its tests skip without Chromium
// unless DUIKOU_TEST_SERVICES=required; screenshots go to the test's
// temporary directory, or DUIKOU_TEST_ARTIFACTS/<test> when that is set.
package roomtest
