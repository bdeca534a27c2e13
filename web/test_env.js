// --pre-js of the Node test binary: the host's environment variables for getenv
// (Emscripten otherwise gives the program a fixed, minimal environment).
Module['preRun'] = (Module['preRun'] || []).concat(function () {
  Object.assign(ENV, process.env);
});
