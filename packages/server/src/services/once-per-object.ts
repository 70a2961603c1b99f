// A feed hands all its subscribers the same object per sample, event or
// routing change: each becomes its message once, shared by them all (and
// forgotten with the object).
export function oncePerObject<K extends object, V>(make: (key: K) => V): (key: K) => V {
  const made = new WeakMap<K, V>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) made.set(key, (value = make(key)));
    return value;
  };
}
