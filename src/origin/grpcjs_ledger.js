// fdsoak's channel ledger for grpc-js, put on Node's `--require` by fdsoak when
// origins are on (NODE_OPTIONS). grpc-js opens a channel's sockets from its own
// callbacks, so the socket's stack names no line of the program; this names
// where each grpc-js Channel was made (a Client makes one) and counts its
// close(). The counts go to the native agent's table (native/node.c), loaded
// here as a Node-API module: the same library already on LD_PRELOAD.
//
// As a guest, it changes nothing the program can rely on:
// - grpc-js's channel module keeps its exports, but ChannelImplementation is a
//   Proxy of the class: `new`, instanceof, statics, the prototype and a
//   channel's `constructor` are as without it; close() calls the original
//   first. Two traces remain: an error thrown by the constructor has one more
//   frame in its stack text, and Function.prototype.toString shows the class
//   as native code;
// - the stack is taken with the program's Error.prepareStackTrace and
//   Error.stackTraceLimit put back before anything else runs;
// - channels are held weakly (WeakMap), so collection is unchanged;
// - an error of its own is swallowed; grpc-js's own errors pass through
//   untouched; no timer, no descriptor, no listener.
'use strict';
(() => {
  let agent;
  try {
    const module = { exports: {} };
    process.dlopen(module, __dirname + '/../libfdsoak_origin.so');
    agent = module.exports;
    if (typeof agent.made !== 'function' || typeof agent.closed !== 'function') return;
  } catch (_) {
    return;
  }
  const Module = require('module');
  const channelSlot = new WeakMap();
  const patched = new WeakSet();
  const ownFile = __filename;
  const MAX_FRAMES = 24;

  function stackText(skip) {
    const prepare = Error.prepareStackTrace;
    const limit = Error.stackTraceLimit;
    let calls = [];
    try {
      Error.prepareStackTrace = (_, c) => c;
      Error.stackTraceLimit = MAX_FRAMES + 4;
      const holder = {};
      Error.captureStackTrace(holder, skip);
      calls = holder.stack;
    } finally {
      Error.prepareStackTrace = prepare;
      Error.stackTraceLimit = limit;
    }
    if (!Array.isArray(calls)) return '';
    const lines = [];
    for (const c of calls) {
      const file = String(c.getFileName() || '').replace(/^file:\/\//, '');
      if (file === ownFile) continue;
      const name = c.getFunctionName() || c.getMethodName() || '(anonymous)';
      lines.push(`${name}\t${file}\t${c.getLineNumber() || 0}`);
      if (lines.length === MAX_FRAMES) break;
    }
    return lines.join('\n');
  }

  function made(channel, target) {
    try {
      const text = stackText(made);
      const slot = text ? agent.made(text, String(target).slice(0, 127)) : 0;
      if (slot) channelSlot.set(channel, slot);
    } catch (_) {
      // The ledger's own failure never reaches the program.
    }
  }

  function closed(channel) {
    try {
      const slot = channelSlot.get(channel);
      if (slot) {
        channelSlot.delete(channel);
        agent.closed(slot);
      }
    } catch (_) {
      // As above.
    }
  }

  function follow(exports) {
    const Channel = exports.ChannelImplementation;
    if (patched.has(exports) || typeof Channel !== 'function' || !Channel.prototype) return;
    patched.add(exports);
    const traced = new Proxy(Channel, {
      construct(target, args, newTarget) {
        const channel = Reflect.construct(target, args, newTarget === traced ? target : newTarget);
        made(channel, args[0]);
        return channel;
      },
    });
    const close = Channel.prototype.close;
    if (typeof close === 'function') {
      Channel.prototype.close = function close_() {
        const result = close.apply(this, arguments);
        closed(this);
        return result;
      };
      Object.defineProperty(Channel.prototype.close, 'name', { value: 'close' });
    }
    try {
      exports.ChannelImplementation = traced;
      // What the program sees as the class is the Proxy: a channel's constructor is too.
      Object.defineProperty(Channel.prototype, 'constructor', { value: traced });
    } catch (_) {
      // A frozen or getter-only export: the channels there go unfollowed.
    }
  }

  // grpc-js's channel module, as grpc-js itself requires it (from its build/src).
  const load = Module._load;
  const inGrpcJs = /[\\/]@grpc[\\/]grpc-js[\\/]build[\\/]src[\\/]/;
  Module._load = function _load(request, parent) {
    const exports = load.apply(this, arguments);
    if (request === './channel' && parent && inGrpcJs.test(String(parent.filename))) {
      try {
        follow(exports);
      } catch (_) {
        // As above.
      }
    }
    return exports;
  };
})();
