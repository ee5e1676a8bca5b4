/** Checkpoints in the browser's IndexedDB: one record per saved file, keyed by its name. */
const DB = 'rnagrad-app';
const STORE = 'checkpoints';

export interface StoredCheckpoint {
  name: string;
  bytes: Uint8Array;
  step: number;
  description: string;
  savedAt: number;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'name' });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`IndexedDB is not available: ${request.error?.message}`));
  });
}

async function transaction<R>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<R>): Promise<R> {
  const db = await open();
  try {
    return await new Promise<R>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'the transaction failed'}`));
      tx.onabort = () =>
        reject(new Error(`IndexedDB: ${tx.error?.message ?? 'the transaction was aborted (storage full?)'}`));
    });
  } finally {
    db.close();
  }
}

export function storeCheckpoint(c: StoredCheckpoint): Promise<unknown> {
  return transaction('readwrite', (s) => s.put(c));
}

export async function readCheckpoint(name: string): Promise<StoredCheckpoint> {
  const c = await transaction('readonly', (s) => s.get(name) as IDBRequest<StoredCheckpoint | undefined>);
  if (!c) throw new Error(`no saved checkpoint named ${name}`);
  return c;
}

export async function listCheckpoints(): Promise<(Omit<StoredCheckpoint, 'bytes'> & { size: number })[]> {
  const all = await transaction('readonly', (s) => s.getAll() as IDBRequest<StoredCheckpoint[]>);
  return all.sort((a, b) => b.savedAt - a.savedAt).map(({ bytes, ...rest }) => ({ ...rest, size: bytes.byteLength }));
}

export function deleteCheckpoint(name: string): Promise<unknown> {
  return transaction('readwrite', (s) => s.delete(name));
}
