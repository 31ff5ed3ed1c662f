/**
 * `fedlab slice users ls|add|rm SLICE`: the users of a live slice — who may log in to its slivers with
 * SSH, with which public keys (GENI's geni_users). A change goes to the slice authority
 * (UpdateSliceUsers), which hands the whole list to every site.
 */
import type { Command } from 'commander';
import { registerSliceUsersAdd } from './users-add.js';
import { registerSliceUsersLs } from './users-ls.js';
import { registerSliceUsersRm } from './users-rm.js';

/** Registers `fedlab slice users`. */
export function registerSliceUsers(slice: Command): void {
  const users = slice.command('users').description("a slice's users and their SSH keys: ls, add, rm");
  registerSliceUsersLs(users);
  registerSliceUsersAdd(users);
  registerSliceUsersRm(users);
}
