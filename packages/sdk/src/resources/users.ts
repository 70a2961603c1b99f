// client.users: UserService — the users who sign in on the server's OAuth login page (authorization code flow).
import { UserService, type CreateUserRequest, type ListUsersRequest, type User } from "@heliosdb/replication-proto";
import type { PagePromise } from "../core/pagination";
import { Resource, type CallOptions, type Params } from "./resource";

const M = UserService.method;

export class Users extends Resource {
  /** POST /v1/users (CreateUser). */
  async create(params: Params<CreateUserRequest>, options?: CallOptions): Promise<User> {
    return (await this.call(M.createUser, params, options)).user!;
  }

  /** GET /v1/users/{user_id} (GetUser). */
  async get(userId: string, options?: CallOptions): Promise<User> {
    return (await this.call(M.getUser, { userId }, options)).user!;
  }

  /** GET /v1/users (ListUsers). */
  list(params: Params<ListUsersRequest> = {}, options?: CallOptions): PagePromise<User> {
    return this.paged(M.listUsers, params, options);
  }

  /** DELETE /v1/users/{user_id} (DeleteUser). */
  async delete(userId: string, options?: CallOptions): Promise<void> {
    await this.call(M.deleteUser, { userId }, options);
  }

  /** POST /v1/users/{user_id}/password (SetUserPassword). */
  async setPassword(userId: string, password: string, options?: CallOptions): Promise<User> {
    return (await this.call(M.setUserPassword, { userId, password }, options)).user!;
  }
}
