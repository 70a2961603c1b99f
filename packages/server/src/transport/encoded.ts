// Encodings of response messages that are answered more than once. A handler
// may answer the same message object to many calls (GetReplication answers
// one per stored row version: services/views.ts `shared`); such a message
// is frozen, so it cannot change, and each protocol encodes it once.

/** `encode(message)`, made once per frozen message (a message that is not frozen is encoded every time). */
export function encodedOnce<M extends object, T>(encode: (message: M) => T): (message: M) => T {
  const kept = new WeakMap<M, T>();
  return (message) => {
    if (!Object.isFrozen(message)) return encode(message);
    let out = kept.get(message);
    if (out === undefined) kept.set(message, (out = encode(message)));
    return out;
  };
}
